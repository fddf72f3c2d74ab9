package app_test

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/installticket"
	"github.com/crmslack/crmslack/libs/testkit"

	"github.com/crmslack/crmslack/services/teams/internal/app"
	"github.com/crmslack/crmslack/services/teams/internal/mongorepo"
	"github.com/crmslack/crmslack/services/teams/internal/registry"
	"github.com/crmslack/crmslack/services/teams/internal/sealing"
)

// flakyPublisher records events and fails while failing is set.
type flakyPublisher struct {
	mu      sync.Mutex
	failing bool
	got     []string // event ids, in publish order
	types   []string
}

func (p *flakyPublisher) Publish(_ context.Context, subject string, ev bus.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failing {
		return errors.New("nats: no responders available for request")
	}
	p.got = append(p.got, ev.GetEnvelope().GetEventId())
	p.types = append(p.types, subject)
	return nil
}

func (p *flakyPublisher) ids() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.got...)
}

func (p *flakyPublisher) setFailing(v bool) {
	p.mu.Lock()
	p.failing = v
	p.mu.Unlock()
}

// memAccess keeps the last access per org.
type memAccess struct {
	mu   sync.Mutex
	last map[string]registry.Access
}

func (m *memAccess) Sync(ctx context.Context, org string, compute func(context.Context) (registry.Access, error)) error {
	a, err := compute(ctx)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.last[org] = a
	return nil
}

func (m *memAccess) get(org string) registry.Access {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last[org]
}

type noSlack struct{}

func (noSlack) Refresh(context.Context, string) (app.Tokens, error) {
	return app.Tokens{}, &app.SlackError{Code: "invalid_refresh_token"}
}
func (noSlack) IsMember(context.Context, string, string) (bool, error) { return false, nil }
func (noSlack) AuthTest(context.Context, string) error                 { return nil }
func (noSlack) UserInfo(context.Context, string, string) (app.SlackUser, bool, error) {
	return app.SlackUser{}, false, nil
}
func (noSlack) Channels(context.Context, string) ([]app.SlackChannel, error) { return nil, nil }
func (noSlack) Users(context.Context, string) ([]app.SlackMember, error)     { return nil, nil }
func (noSlack) Revoke(context.Context, string) error                         { return nil }

type fixture struct {
	svc    *app.Service
	repo   *mongorepo.Repo
	pub    *flakyPublisher
	access *memAccess
	keys   *sealing.Keyring
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, noSlack{})
}

// newFixtureWith is newFixture with slack playing Slack.
func newFixtureWith(t *testing.T, slack app.Slack) *fixture {
	t.Helper()
	db := testkit.Store(t, "teams_app")
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	keys, err := sealing.NewKeyring(sealing.Key{ID: "k1", Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	tickets, err := installticket.NewSigner(nil, []byte(strings.Repeat("t", 32)))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{repo: mongorepo.New(db.DB()), pub: &flakyPublisher{}, access: &memAccess{last: map[string]registry.Access{}}, keys: keys}
	f.svc = app.New(app.Config{InstallURL: "http://gw/slack/install"}, f.repo, f.pub, f.access, slack, keys, tickets, testkit.Logger(t), nil)
	return f
}

func installInput(org, team string) app.CompleteInstallInput {
	return app.CompleteInstallInput{
		OrgID: org, By: registry.User{ID: "admin1"},
		Team:     registry.TeamInfo{TeamID: team, Name: "Acme", BotUserID: "U0ACMEBOT1", Scopes: []string{"chat:write"}},
		BotToken: "xoxb-123-456-secretsecret",
	}
}

var adminCaller = registry.Caller{User: registry.User{ID: "admin1"}, IsAdmin: true}

// TestEventsSurviveAFailedPublish: a change whose event could not be
// published stands, keeps the event, and Sweep publishes it later, once.
func TestEventsSurviveAFailedPublish(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := testkit.Context(t)
	if _, _, err := f.svc.CompleteInstall(ctx, installInput("org1", "T0ACME0001")); err != nil {
		t.Fatal(err)
	}
	f.pub.setFailing(true)
	if err := f.svc.RemoveTeam(ctx, "org1", "T0ACME0001", adminCaller); err != nil {
		t.Fatalf("the removal must stand even when its event cannot be published yet: %v", err)
	}
	if err := f.svc.SetIntegration(ctx, "org1", false, adminCaller); err != nil {
		t.Fatal(err)
	}
	if got := f.pub.ids(); len(got) != 1 {
		t.Fatalf("published %v while failing", got)
	}
	dirty, err := f.repo.DirtyTeams(ctx)
	if err != nil || len(dirty) != 1 || len(dirty[0].Pending) != 1 {
		t.Fatalf("pending after a failed publish: %v %v", dirty, err)
	}
	if err := f.svc.Sweep(ctx, false); err == nil {
		t.Fatal("sweep while the bus is down reported success")
	}
	f.pub.setFailing(false)
	if err := f.svc.Sweep(ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Sweep(ctx, false); err != nil {
		t.Fatal(err)
	}
	want := []string{"team-installed:org1/T0ACME0001:1", "team-removed:org1/T0ACME0001:1", "integration-disabled:org1:1"}
	got := f.pub.ids()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("published %v, want %v", got, want)
	}
	if dirty, _ := f.repo.DirtyTeams(ctx); len(dirty) != 0 {
		t.Fatalf("still pending: %v", dirty)
	}
	if a := f.access.get("org1"); a.Enabled || len(a.Teams) != 0 {
		t.Fatalf("access %+v", a)
	}
}

func TestSlackEventsRemoveOncePerOrg(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := testkit.Context(t)
	for _, org := range []string{"org1", "org2"} {
		if _, _, err := f.svc.CompleteInstall(ctx, installInput(org, "T0ACME0001")); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := f.svc.CompleteInstall(ctx, installInput("org1", "T0GLBX0001")); err != nil {
		t.Fatal(err)
	}
	before := len(f.pub.ids())
	events := []app.SlackEvent{
		// Only user tokens: not the registry's concern.
		{EventID: "Ev1", TeamID: "T0ACME0001", Type: app.EventTokensRevoked},
		// Another bot's tokens.
		{EventID: "Ev2", TeamID: "T0ACME0001", Type: app.EventTokensRevoked, RevokedBotUsers: []string{"U0OTHER001"}},
		// An event from before the install (a late redelivery).
		{EventID: "Ev3", TeamID: "T0ACME0001", Type: app.EventAppUninstalled, EventTime: time.Now().Add(-time.Hour)},
		// An event the registry ignores.
		{EventID: "Ev4", TeamID: "T0ACME0001", Type: "app_home_opened"},
	}
	for _, ev := range events {
		if err := f.svc.HandleSlackEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.pub.ids()) - before; n != 0 {
		t.Fatalf("%d events published for events that change nothing", n)
	}
	for _, ev := range []app.SlackEvent{
		{EventID: "Ev5", TeamID: "T0ACME0001", Type: app.EventTokensRevoked, RevokedBotUsers: []string{"U0ACMEBOT1"}, EventTime: time.Now()},
		{EventID: "Ev6", TeamID: "T0ACME0001", Type: app.EventAppUninstalled, EventTime: time.Now()},
		{EventID: "Ev6", TeamID: "T0ACME0001", Type: app.EventAppUninstalled, EventTime: time.Now()},
	} {
		if err := f.svc.HandleSlackEvent(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	got := f.pub.ids()[before:]
	if strings.Join(got, ",") != "team-removed:org1/T0ACME0001:1,team-removed:org2/T0ACME0001:1" {
		t.Fatalf("published %v", got)
	}
	if a := f.access.get("org1"); len(a.Teams) != 1 || a.Teams[0].TeamID != "T0GLBX0001" {
		t.Fatalf("org1 access %+v", a)
	}
	if err := f.svc.HandleSlackEvent(ctx, app.SlackEvent{TeamID: "bad.team", Type: app.EventAppUninstalled}); !errors.Is(err, registry.ErrInvalidArgument) {
		t.Fatalf("bad team id: %v", err)
	}
}

func TestTokensAreSealedPerRow(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := testkit.Context(t)
	for _, org := range []string{"org1", "org2"} {
		if _, _, err := f.svc.CompleteInstall(ctx, installInput(org, "T0ACME0001")); err != nil {
			t.Fatal(err)
		}
	}
	a, _, _ := f.repo.Team(ctx, "org1", "T0ACME0001")
	b, _, _ := f.repo.Team(ctx, "org2", "T0ACME0001")
	// Copy org1's ciphertext into org2's row: it must not open there.
	b.BotToken = a.BotToken
	if err := f.repo.SaveTeam(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.GetBotToken(ctx, "org2", "T0ACME0001"); !errors.Is(err, sealing.ErrOpen) {
		t.Fatalf("a ciphertext moved to another row opened: %v", err)
	}
	tok, err := f.svc.GetBotToken(ctx, "org1", "T0ACME0001")
	if err != nil || tok.Token != "xoxb-123-456-secretsecret" {
		t.Fatalf("org1 token: %v", err)
	}
}

func TestBeginInstallURL(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	u, err := f.svc.BeginInstall(testkit.Context(t), "org1", adminCaller, "T0ACME0001")
	if err != nil || !strings.HasPrefix(u, "http://gw/slack/install?") || !strings.Contains(u, "org=org1") || !strings.Contains(u, "admin=admin1") || !strings.Contains(u, "ticket=t1.") {
		t.Fatalf("%q %v", u, err)
	}
	if _, err := f.svc.BeginInstall(testkit.Context(t), "org1", registry.Caller{User: registry.User{ID: "u"}}, ""); !errors.Is(err, registry.ErrPermissionDenied) {
		t.Fatalf("non-admin: %v", err)
	}
}
