package e2e

import (
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/crmslack/crmslack/libs/testkit"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"
)

// TestListDirectoryFromSlack reads a team's channels and people from the
// stand-in's conversations.list and users.list: public channels and the
// private ones the bot is in, never archived ones; people, never bots or
// deactivated users; and whether the bot can post (the gateway asks for
// chat:write.public, so in every public channel too).
func TestListDirectoryFromSlack(t *testing.T) {
	s := startStack(t, stackOptions{})
	ctx := testkit.Context(t)
	install(t, s, org, acme, "Acme Corp")
	d, err := s.registry.ListDirectory(ctx, &teamsv1.ListDirectoryRequest{OrgId: org, TeamId: acme})
	if err != nil {
		t.Fatal(err)
	}
	type ch struct {
		id                       string
		private, member, canPost bool
	}
	var got []ch
	for _, c := range d.GetChannels() {
		got = append(got, ch{c.GetId(), c.GetIsPrivate(), c.GetIsMember(), c.GetCanPost()})
	}
	want := []ch{
		{"C0ACMEGNRL", false, true, true},
		{"C0ACMESALE", false, true, true},
		{"C0ACMERAND", false, false, true},
		{"G0ACMEDEAL", true, true, true},
	}
	if !slices.Equal(got, want) {
		t.Errorf("channels %+v, want %+v", got, want)
	}
	var users []string
	for _, u := range d.GetUsers() {
		users = append(users, u.GetId())
		if u.GetId() == "U0ACME0ALC" && (u.GetEmail() != "alice@acme.example" || u.GetRealName() != "Alice Johnson") {
			t.Errorf("alice listed as %v", u)
		}
	}
	if !slices.Equal(users, []string{"U0ACME0ALC", "U0ACME0BOB", "U0ACME0CAR", "U0ACME0DAN", "U0ACME0EVE"}) {
		t.Errorf("users %v: the bot and deactivated Frank must be left out", users)
	}
	if _, err := s.registry.ListDirectory(ctx, &teamsv1.ListDirectoryRequest{OrgId: org, TeamId: globex}); status.Code(err) != codes.NotFound {
		t.Errorf("a team the org never added: %v, want NotFound", err)
	}
}
