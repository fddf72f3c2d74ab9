package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/crmauth"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/topology"
	integrationv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/integration/v1"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"
)

func install(t *testing.T, s *stack, org, team, name string) {
	t.Helper()
	p := newBrowser(t).get(t, s.beginInstall(t, org, team))
	if p.status != http.StatusOK || !strings.Contains(p.body, name) {
		t.Fatalf("installing %s into %s: %d %s", team, org, p.status, p.body)
	}
}

// TestRegistryErrorCodes checks that unknown orgs and teams, bad arguments
// and admin calls without admin rights get clear status codes.
func TestRegistryErrorCodes(t *testing.T) {
	s := startStack(t, stackOptions{})
	ctx := testkit.Context(t)
	install(t, s, org, acme, "Acme Corp")
	// One Slack team may serve a second org only when that org's admin
	// authorised it too.
	install(t, s, "globex-crm", acme, "Acme Corp")
	r := s.registry

	cases := []struct {
		name string
		call func() error
		code codes.Code
		msg  string
	}{
		{"list: unknown org", func() error { _, err := r.ListTeams(ctx, &teamsv1.ListTeamsRequest{OrgId: "no-such-org"}); return err },
			codes.NotFound, "org no-such-org has no Slack integration"},
		{"list: org id with a dot", func() error { _, err := r.ListTeams(ctx, &teamsv1.ListTeamsRequest{OrgId: "a.b"}); return err },
			codes.InvalidArgument, "org_id"},
		{"list: missing org", func() error { _, err := r.ListTeams(ctx, &teamsv1.ListTeamsRequest{}); return err },
			codes.InvalidArgument, "org_id is required"},
		{"list: bad member email", func() error {
			_, err := r.ListTeams(ctx, &teamsv1.ListTeamsRequest{OrgId: org, MemberEmail: "bob"})
			return err
		}, codes.InvalidArgument, "member_email"},
		{"get: unknown team", func() error {
			_, err := r.GetTeam(ctx, &teamsv1.GetTeamRequest{OrgId: org, TeamId: "T0NOPE0001"})
			return err
		}, codes.NotFound, "team T0NOPE0001 is not registered for org acme-crm"},
		{"get: not a team id", func() error {
			_, err := r.GetTeam(ctx, &teamsv1.GetTeamRequest{OrgId: org, TeamId: "acme"})
			return err
		},
			codes.InvalidArgument, "is not a Slack team id"},
		{"remove: not an admin", func() error {
			_, err := r.RemoveTeam(ctx, &teamsv1.RemoveTeamRequest{OrgId: org, TeamId: acme, Caller: nonAdmin})
			return err
		}, codes.PermissionDenied, "needs a CRM admin"},
		{"remove: a user's credential, no caller in the body", func() error {
			_, err := r.RemoveTeam(ctx, &teamsv1.RemoveTeamRequest{OrgId: org, TeamId: acme},
				testkit.CRMCall(t, s.pki, org, "sam@acme.example", crmauth.RoleUser))
			return err
		}, codes.PermissionDenied, "needs a CRM admin"},
		{"remove: unknown team", func() error {
			_, err := r.RemoveTeam(ctx, &teamsv1.RemoveTeamRequest{OrgId: org, TeamId: globex, Caller: admin})
			return err
		}, codes.NotFound, "not registered"},
		{"remove: unknown org", func() error {
			_, err := r.RemoveTeam(ctx, &teamsv1.RemoveTeamRequest{OrgId: "no-such-org", TeamId: acme, Caller: admin})
			return err
		}, codes.NotFound, "not registered"},
		{"disable: unknown org", func() error {
			_, err := r.DisableIntegration(ctx, &teamsv1.DisableIntegrationRequest{OrgId: "no-such-org", Caller: admin})
			return err
		}, codes.NotFound, "no Slack integration"},
		{"enable: not an admin", func() error {
			_, err := r.EnableIntegration(ctx, &teamsv1.EnableIntegrationRequest{OrgId: org, Caller: nonAdmin})
			return err
		}, codes.PermissionDenied, "needs a CRM admin"},
		{"integration: unknown org", func() error {
			_, err := r.GetIntegration(ctx, &teamsv1.GetIntegrationRequest{OrgId: "no-such-org"})
			return err
		}, codes.NotFound, ""},
		{"begin install: not an admin", func() error {
			_, err := r.BeginInstall(ctx, &teamsv1.BeginInstallRequest{OrgId: org, Caller: nonAdmin})
			return err
		}, codes.PermissionDenied, ""},
		{"begin install: bad team hint", func() error {
			_, err := r.BeginInstall(ctx, &teamsv1.BeginInstallRequest{OrgId: org, Caller: admin, TeamHint: "x"})
			return err
		}, codes.InvalidArgument, ""},
		{"complete install: no team", func() error {
			_, err := r.CompleteInstall(ctx, &teamsv1.CompleteInstallRequest{OrgId: org, BotToken: "xoxb-1"})
			return err
		}, codes.InvalidArgument, "team"},
		{"bot token: unknown team", func() error {
			_, err := r.GetBotToken(ctx, &teamsv1.GetBotTokenRequest{OrgId: org, TeamId: "T0NOPE0001"})
			return err
		}, codes.NotFound, ""},
	}
	for _, c := range cases {
		err := c.call()
		st := status.Convert(err)
		if st.Code() != c.code || !strings.Contains(st.Message(), c.msg) {
			t.Errorf("%s: %s %q, want %s containing %q", c.name, st.Code(), st.Message(), c.code, c.msg)
		}
	}

	users := []struct {
		user     string
		email    string
		realName string
		deleted  bool
		code     codes.Code
	}{
		{"U0ACME0BOB", "bob@acme.example", "Bob Martinez", false, codes.OK},
		{"U0ACME0FRK", "frank@acme.example", "Frank Ito", true, codes.OK},
		{"U0NOPE0001", "", "", false, codes.NotFound},
		{"bob", "", "", false, codes.InvalidArgument},
	}
	for _, c := range users {
		u, err := r.GetSlackUser(ctx, &teamsv1.GetSlackUserRequest{TeamId: acme, UserId: c.user})
		if status.Code(err) != c.code || u.GetEmail() != c.email || u.GetRealName() != c.realName || u.GetDeleted() != c.deleted {
			t.Errorf("GetSlackUser(%s): %v %v", c.user, u, err)
		}
	}
	if _, err := r.GetSlackUser(ctx, &teamsv1.GetSlackUserRequest{TeamId: globex, UserId: "U0GLBX0IVY"}); status.Code(err) != codes.NotFound {
		t.Errorf("GetSlackUser in a team no org has: %v", err)
	}

	res, err := r.ResolveTeam(ctx, &teamsv1.ResolveTeamRequest{TeamId: acme})
	if err != nil || len(res.GetOrgIds()) != 2 || !res.GetIntegrationEnabled() {
		t.Fatalf("ResolveTeam: %v %v", res, err)
	}

	// An admin's removal: idempotent, announced once, and only for that org.
	for range 2 {
		if _, err := r.RemoveTeam(ctx, &teamsv1.RemoveTeamRequest{OrgId: org, TeamId: acme, Caller: admin}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.GetBotToken(ctx, &teamsv1.GetBotTokenRequest{OrgId: org, TeamId: acme}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("GetBotToken of a removed team: %v", err)
	}
	if _, err := r.GetBotToken(ctx, &teamsv1.GetBotTokenRequest{OrgId: "globex-crm", TeamId: acme}); err != nil {
		t.Errorf("the other org's row of the same team still works: %v", err)
	}
	if n := s.countOn(t, topology.StreamIntegration, topology.Team(org, "removed")); n != 1 {
		t.Errorf("%d TeamRemoved for %s, want 1", n, org)
	}
	if n := s.countOn(t, topology.StreamIntegration, topology.Team("globex-crm", "removed")); n != 0 {
		t.Errorf("%d TeamRemoved for globex-crm, want 0", n)
	}
	st, _ := s.js.Stream(ctx, topology.StreamIntegration)
	m, err := st.GetLastMsgForSubject(ctx, topology.Team(org, "removed"))
	if err != nil {
		t.Fatal(err)
	}
	var removed integrationv1.TeamRemoved
	if err := proto.Unmarshal(m.Data, &removed); err != nil {
		t.Fatal(err)
	}
	if removed.GetReason() != integrationv1.TeamRemovedReason_TEAM_REMOVED_REASON_ADMIN || removed.GetRemovedBy().GetId() != admin.GetUser().GetId() ||
		removed.GetTeamId() != acme || removed.GetEnvelope().GetEventId() != "team-removed:acme-crm/T0ACME0001:1" {
		t.Errorf("TeamRemoved %v", &removed)
	}
}

// TestRotatingTokensAreRefreshed installs a team with Slack's token
// rotation on (tokens living 6 s in the stand-in), and checks the registry
// refreshes them before they expire, hands out working tokens, and marks
// the team broken when Slack stops honouring its refresh token.
func TestRotatingTokensAreRefreshed(t *testing.T) {
	s := startStack(t, stackOptions{tokenRotation: true, tokenExpiresIn: 6 * time.Second, refreshEvery: 200 * time.Millisecond})
	ctx := testkit.Context(t)
	install(t, s, org, globex, "Globex")
	first, err := s.registry.GetTeam(ctx, &teamsv1.GetTeamRequest{OrgId: org, TeamId: globex})
	if err != nil {
		t.Fatal(err)
	}
	if !first.GetTeam().GetTokenRotation() || first.GetTeam().GetTokenExpiresAt() == nil {
		t.Fatalf("team not rotating: %v", first)
	}
	tok1, err := s.registry.GetBotToken(ctx, &teamsv1.GetBotTokenRequest{OrgId: org, TeamId: globex})
	if err != nil || !strings.HasPrefix(tok1.GetBotToken(), "xoxe.xoxb-") {
		t.Fatalf("GetBotToken: %v", err)
	}
	// The background loop refreshes with under half the lifetime left:
	// within ~3 s, twice in 9 s.
	expiry := first.GetTeam().GetTokenExpiresAt().AsTime()
	for round := range 2 {
		testkit.Eventually(t, 10*time.Second, func() bool {
			r, err := s.registry.GetTeam(ctx, &teamsv1.GetTeamRequest{OrgId: org, TeamId: globex})
			if err != nil || !r.GetTeam().GetTokenExpiresAt().AsTime().After(expiry) {
				return false
			}
			expiry = r.GetTeam().GetTokenExpiresAt().AsTime()
			return true
		}, "refresh %d", round+1)
	}
	tok2, err := s.registry.GetBotToken(ctx, &teamsv1.GetBotTokenRequest{OrgId: org, TeamId: globex})
	if err != nil || tok2.GetBotToken() == tok1.GetBotToken() {
		t.Fatalf("GetBotToken after refresh: same token or %v", err)
	}
	if _, err := slack.New(tok2.GetBotToken(), slack.OptionAPIURL(s.standin.URL()+"/api/")).AuthTestContext(ctx); err != nil {
		t.Fatalf("the refreshed token does not work at Slack: %v", err)
	}
	rep, err := s.registry.ReportTokenFailure(ctx, &teamsv1.ReportTokenFailureRequest{OrgId: org, TeamId: globex, SlackError: "token_expired"})
	if err != nil || !rep.GetRefreshed() || rep.GetStatus() != teamsv1.TeamStatus_TEAM_STATUS_ACTIVE {
		t.Fatalf("ReportTokenFailure(token_expired): %v %v", rep, err)
	}

	// Slack forgets the app (refresh tokens die): the next report finds the
	// refresh refused and the team broken, out of the org's access.
	s.standin.RevokeTeam(globex)
	rep, err = s.registry.ReportTokenFailure(ctx, &teamsv1.ReportTokenFailureRequest{OrgId: org, TeamId: globex, SlackError: "invalid_auth"})
	if err != nil || rep.GetRefreshed() || rep.GetStatus() != teamsv1.TeamStatus_TEAM_STATUS_BROKEN {
		t.Fatalf("ReportTokenFailure after revocation: %v %v", rep, err)
	}
	if _, err := s.registry.GetBotToken(ctx, &teamsv1.GetBotTokenRequest{OrgId: org, TeamId: globex}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("GetBotToken of a broken team: %v", err)
	}
	testkit.Eventually(t, 5*time.Second, func() bool {
		return s.countOn(t, topology.StreamIntegration, topology.Team(org, "removed")) == 1
	}, "TeamRemoved(token invalid) published")
	// Re-authorising repairs it.
	install(t, s, org, globex, "Globex")
	if _, err := s.registry.GetBotToken(ctx, &teamsv1.GetBotTokenRequest{OrgId: org, TeamId: globex}); err != nil {
		t.Fatalf("GetBotToken after re-authorising: %v", err)
	}
}
