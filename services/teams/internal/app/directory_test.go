package app_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/crmslack/crmslack/libs/testkit"

	"github.com/crmslack/crmslack/services/teams/internal/app"
	"github.com/crmslack/crmslack/services/teams/internal/registry"
)

// directorySlack answers the listings and counts them.
type directorySlack struct {
	noSlack
	mu            sync.Mutex
	channelsCalls int
	usersCalls    int
}

func (d *directorySlack) Channels(context.Context, string) ([]app.SlackChannel, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.channelsCalls++
	return []app.SlackChannel{
		{ID: "C0GENERAL1", Name: "general", Member: true},
		{ID: "C0RANDOM01", Name: "random"},
		{ID: "G0DEALDESK", Name: "deal-desk", Private: true, Member: true},
		{ID: "C0OLDPIPE1", Name: "old-pipeline", Member: true, Archived: true},
	}, nil
}

func (d *directorySlack) Users(context.Context, string) ([]app.SlackMember, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.usersCalls++
	return []app.SlackMember{
		{ID: "U0ALICE001", Name: "alice", RealName: "Alice", Email: "alice@acme.example"},
		{ID: "U0FRANK001", Name: "frank", Deleted: true},
		{ID: "U0JIRABOT1", Name: "jira", Bot: true},
		{ID: "USLACKBOT", Name: "slackbot"},
	}, nil
}

func (d *directorySlack) calls() (int, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.channelsCalls, d.usersCalls
}

// TestListDirectory: only channels and people data may go to, where the
// bot may post decided by its scopes, read from Slack once per TTL, and
// refused for a team the org cannot use.
func TestListDirectory(t *testing.T) {
	t.Parallel()
	slack := &directorySlack{}
	f := newFixtureWith(t, slack)
	ctx := testkit.Context(t)
	in := installInput("org1", "T0ACME0001")
	if _, _, err := f.svc.CompleteInstall(ctx, in); err != nil {
		t.Fatal(err)
	}
	d, err := f.svc.ListDirectory(ctx, "org1", "T0ACME0001")
	if err != nil {
		t.Fatal(err)
	}
	want := []app.DirectoryChannel{
		{ID: "C0GENERAL1", Name: "general", Member: true, CanPost: true},
		{ID: "C0RANDOM01", Name: "random"},
		{ID: "G0DEALDESK", Name: "deal-desk", Private: true, Member: true, CanPost: true},
	}
	if !slices.Equal(d.Channels, want) {
		t.Errorf("channels %+v, want %+v", d.Channels, want)
	}
	if len(d.Users) != 1 || d.Users[0] != (app.DirectoryUser{ID: "U0ALICE001", Name: "alice", RealName: "Alice", Email: "alice@acme.example"}) {
		t.Errorf("users %+v: deactivated people, bots and Slackbot must be left out", d.Users)
	}
	if d.FetchedAt.IsZero() {
		t.Error("no fetch time")
	}
	if _, err := f.svc.ListDirectory(ctx, "org1", "T0ACME0001"); err != nil {
		t.Fatal(err)
	}
	if c, u := slack.calls(); c != 1 || u != 1 {
		t.Errorf("Slack listed %d/%d times for two calls within the TTL, want once", c, u)
	}

	// A reinstall with chat:write.public forgets the listing, and the bot
	// may now post in public channels it is not in.
	in.Team.Scopes = append(in.Team.Scopes, app.ScopePostPublic)
	if _, _, err := f.svc.CompleteInstall(ctx, in); err != nil {
		t.Fatal(err)
	}
	d, err = f.svc.ListDirectory(ctx, "org1", "T0ACME0001")
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(d.Channels, func(c app.DirectoryChannel) bool { return c.ID == "C0RANDOM01" }); i < 0 || !d.Channels[i].CanPost {
		t.Errorf("with chat:write.public, #random must be postable: %+v", d.Channels)
	}
	if c, _ := slack.calls(); c != 2 {
		t.Errorf("a reinstall must forget the cached listing: %d listings", c)
	}

	for _, c := range []struct {
		name      string
		org, team string
		prepare   func()
		want      error
	}{
		{"another org's team", "org2", "T0ACME0001", func() {}, registry.ErrNotFound},
		{"bad team id", "org1", "bad.team", func() {}, registry.ErrInvalidArgument},
		{"disabled org", "org1", "T0ACME0001", func() {
			if err := f.svc.SetIntegration(ctx, "org1", false, adminCaller); err != nil {
				t.Fatal(err)
			}
		}, registry.ErrFailedPrecondition},
		{"removed team", "org1", "T0ACME0001", func() {
			if err := f.svc.SetIntegration(ctx, "org1", true, adminCaller); err != nil {
				t.Fatal(err)
			}
			if err := f.svc.RemoveTeam(ctx, "org1", "T0ACME0001", adminCaller); err != nil {
				t.Fatal(err)
			}
		}, registry.ErrFailedPrecondition},
	} {
		c.prepare()
		if _, err := f.svc.ListDirectory(ctx, c.org, c.team); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}
