package e2e

import (
	"testing"

	"github.com/crmslack/crmslack/libs/testkit"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"
)

// Removing a team revokes its token at Slack (auth.revoke), not only in
// the registry; removing it again calls Slack no more.
func TestRemovingATeamRevokesItsTokenAtSlack(t *testing.T) {
	s := startStack(t, stackOptions{})
	ctx := testkit.Context(t)
	install(t, s, org, acme, "Acme Corp")
	if n := s.standin.LiveTokens(acme); n != 1 {
		t.Fatalf("%d live tokens after the install, want 1", n)
	}
	// The admin view counts the rows each sealing key protects.
	list, err := s.registry.ListTeams(ctx, &teamsv1.ListTeamsRequest{OrgId: org})
	if err != nil {
		t.Fatal(err)
	}
	if k := list.GetTokenKeys(); len(k) != 1 || k[0].GetRows() != 1 || !k[0].GetCurrent() {
		t.Fatalf("token keys in the admin view: %v", k)
	}
	admin := &teamsv1.Caller{User: &commonv1.CrmUserRef{Id: "u1", Name: "Ada"}, IsAdmin: true}
	for range 2 {
		if _, err := s.registry.RemoveTeam(ctx, &teamsv1.RemoveTeamRequest{OrgId: org, TeamId: acme, Caller: admin}); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.standin.LiveTokens(acme); n != 0 {
		t.Fatalf("%d live tokens after the removal, want 0", n)
	}
	if n := s.standin.Stats().Calls["auth.revoke"]; n != 1 {
		t.Fatalf("auth.revoke called %d times, want 1", n)
	}
}
