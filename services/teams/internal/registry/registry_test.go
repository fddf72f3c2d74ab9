package registry

import (
	"errors"
	"testing"
	"time"

	"github.com/crmslack/crmslack/services/teams/internal/sealing"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func install(org, team string) Install {
	return Install{
		OrgID: org,
		By:    User{ID: "admin1", Name: "Ada"},
		Team: TeamInfo{
			TeamID: team, Name: "Acme", Domain: "acme", BotUserID: "U0BOT1",
			Scopes: []string{"chat:write", "commands"},
		},
		BotToken: sealing.Sealed{KeyID: "k1", Data: []byte{1}},
	}
}

func TestApplyInstallValidates(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		edit func(*Install)
	}{
		{"no org", func(i *Install) { i.OrgID = "" }},
		{"org with a dot", func(i *Install) { i.OrgID = "a.b" }},
		{"org with a wildcard", func(i *Install) { i.OrgID = "a*" }},
		{"no team", func(i *Install) { i.Team.TeamID = "" }},
		{"bad team id", func(i *Install) { i.Team.TeamID = "acme" }},
		{"no admin", func(i *Install) { i.By.ID = "" }},
		{"no team name", func(i *Install) { i.Team.Name = "" }},
		{"bad bot user", func(i *Install) { i.Team.BotUserID = "bot" }},
		{"no token", func(i *Install) { i.BotToken = sealing.Sealed{} }},
		{"refresh without expiry", func(i *Install) { i.RefreshToken = sealing.Sealed{KeyID: "k1", Data: []byte{2}} }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			in := install("org1", "T0ACME0001")
			c.edit(&in)
			if _, _, err := ApplyInstall(nil, in, t0); !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("err %v, want invalid argument", err)
			}
		})
	}
}

func TestInstallLifecycle(t *testing.T) {
	t.Parallel()
	first, reinstall, err := ApplyInstall(nil, install("org1", "T0ACME0001"), t0)
	if err != nil {
		t.Fatal(err)
	}
	if reinstall || first.Status != StatusActive || first.Generation != 1 || len(first.Pending) != 1 {
		t.Fatalf("first install: reinstall=%v %+v", reinstall, first)
	}
	ev := first.Pending[0]
	if ev.Kind != EventTeamInstalled || ev.ID != "team-installed:org1/T0ACME0001:1" || ev.Team.Name != "Acme" {
		t.Fatalf("event %+v", ev)
	}

	first.Pending = nil
	again, reinstall, err := ApplyInstall(&first, install("org1", "T0ACME0001"), t0.Add(time.Minute))
	if err != nil || !reinstall || again.Generation != 2 || again.Pending[0].ID != "team-installed:org1/T0ACME0001:2" {
		t.Fatalf("reinstall: %v %v %+v", err, reinstall, again)
	}

	again.Pending = nil
	if !again.Remove(ReasonAppUninstalled, User{}, t0.Add(2*time.Minute)) {
		t.Fatal("remove changed nothing")
	}
	if again.Status != StatusRemoved || !again.BotToken.IsZero() || len(again.Pending) != 1 ||
		again.Pending[0].ID != "team-removed:org1/T0ACME0001:2" || again.Pending[0].Reason != ReasonAppUninstalled {
		t.Fatalf("after remove: %+v", again)
	}
	// A second removal (a retried event, or tokens_revoked after
	// app_uninstalled) changes nothing and records no event.
	if again.Remove(ReasonTokensRevoked, User{}, t0.Add(3*time.Minute)) || len(again.Pending) != 1 {
		t.Fatalf("second remove: %+v", again)
	}

	// Installing a removed team is a fresh install, not a reinstall.
	again.Pending = nil
	back, reinstall, err := ApplyInstall(&again, install("org1", "T0ACME0001"), t0.Add(4*time.Minute))
	if err != nil || reinstall || back.Status != StatusActive || back.RemovedReason != 0 {
		t.Fatalf("install after removal: %v %v %+v", err, reinstall, back)
	}
	if _, _, err := ApplyInstall(&back, install("org2", "T0ACME0001"), t0); err == nil {
		t.Fatal("an install for another org was applied to this row")
	}
}

func TestBrokenThenRemoved(t *testing.T) {
	t.Parallel()
	tm, _, _ := ApplyInstall(nil, install("org1", "T0ACME0001"), t0)
	tm.Pending = nil
	if !tm.MarkBroken(t0) || tm.Status != StatusBroken || len(tm.Pending) != 1 || tm.Pending[0].Reason != ReasonTokenInvalid {
		t.Fatalf("broken: %+v", tm)
	}
	if tm.MarkBroken(t0) {
		t.Fatal("marking broken twice changed something")
	}
	if !tm.Remove(ReasonAdmin, User{ID: "a"}, t0) || tm.Status != StatusRemoved || len(tm.Pending) != 1 {
		t.Fatalf("removing a broken team must not announce it twice: %+v", tm)
	}
}

func TestOrgSwitch(t *testing.T) {
	t.Parallel()
	o := NewOrg("org1", t0)
	if o.Enable(User{}, t0) {
		t.Fatal("enabling an enabled org changed it")
	}
	if !o.Disable(User{ID: "a"}, t0) || o.Enabled || o.Pending[0].ID != "integration-disabled:org1:1" {
		t.Fatalf("disable: %+v", o)
	}
	if o.Disable(User{ID: "a"}, t0) || len(o.Pending) != 1 {
		t.Fatal("disabling twice recorded a second event")
	}
	if !o.Enable(User{ID: "a"}, t0) || !o.Enabled || o.Pending[1].ID != "integration-enabled:org1:2" || o.Pending[1].Kind != EventIntegrationEnabled {
		t.Fatalf("enable: %+v", o)
	}
}

func TestAccessOf(t *testing.T) {
	t.Parallel()
	a, _, _ := ApplyInstall(nil, install("org1", "T0ACME0002"), t0)
	b, _, _ := ApplyInstall(nil, install("org1", "T0ACME0001"), t0)
	c, _, _ := ApplyInstall(nil, install("org1", "T0ACME0003"), t0)
	c.Remove(ReasonAdmin, User{}, t0)
	other, _, _ := ApplyInstall(nil, install("org2", "T0ACME0004"), t0)
	got := AccessOf("org1", nil, []Team{a, b, c, other}, t0)
	if !got.Enabled || len(got.Teams) != 2 || got.Teams[0].TeamID != "T0ACME0001" || got.Teams[1].TeamID != "T0ACME0002" {
		t.Fatalf("access %+v", got)
	}
	off := NewOrg("org1", t0)
	off.Disable(User{}, t0)
	if AccessOf("org1", &off, []Team{a}, t0).Enabled {
		t.Fatal("disabled org reported enabled")
	}
}

func TestRefreshDue(t *testing.T) {
	t.Parallel()
	rot := func(lifetime, elapsed time.Duration) bool {
		tm := Team{Status: StatusActive, RefreshToken: sealing.Sealed{KeyID: "k", Data: []byte{1}},
			TokenIssuedAt: t0, TokenExpiresAt: t0.Add(lifetime)}
		return tm.RefreshDue(t0.Add(elapsed))
	}
	cases := []struct {
		name              string
		lifetime, elapsed time.Duration
		want              bool
	}{
		{"12h token, fresh", 12 * time.Hour, time.Hour, false},
		{"12h token, 8h in", 12 * time.Hour, 8 * time.Hour, false},
		{"12h token, 9h1m in: under a quarter left", 12 * time.Hour, 9*time.Hour + time.Minute, true},
		{"2h token, 30m in", 2 * time.Hour, 30 * time.Minute, false},
		{"2h token, 61m in: under an hour left", 2 * time.Hour, 61 * time.Minute, true},
		{"10s token, 4s in", 10 * time.Second, 4 * time.Second, false},
		{"10s token, 6s in", 10 * time.Second, 6 * time.Second, true},
		{"expired", time.Hour, 2 * time.Hour, true},
	}
	for _, c := range cases {
		if got := rot(c.lifetime, c.elapsed); got != c.want {
			t.Errorf("%s: due=%v, want %v", c.name, got, c.want)
		}
	}
	if (&Team{Status: StatusActive, TokenExpiresAt: t0}).RefreshDue(t0.Add(time.Hour)) {
		t.Error("a team without refresh token is never due")
	}
}

func TestApplyRefreshConflicts(t *testing.T) {
	t.Parallel()
	tm, _, _ := ApplyInstall(nil, install("org1", "T0ACME0001"), t0)
	newTok := sealing.Sealed{KeyID: "k1", Data: []byte{9}}
	if err := tm.ApplyRefresh(tm.Generation, tm.TokenSerial-1, newTok, newTok, t0.Add(time.Hour), t0); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale serial: %v", err)
	}
	if err := tm.ApplyRefresh(tm.Generation, tm.TokenSerial, newTok, newTok, t0.Add(time.Hour), t0); err != nil {
		t.Fatal(err)
	}
	if tm.TokenSerial != 2 || tm.BotToken.Data[0] != 9 {
		t.Fatalf("%+v", tm)
	}
}

func TestStaleSlackEvent(t *testing.T) {
	t.Parallel()
	tm, _, _ := ApplyInstall(nil, install("org1", "T0ACME0001"), t0.Add(500*time.Millisecond))
	if tm.StaleSlackEvent(t0) {
		t.Error("an event in the install's second is not stale")
	}
	if !tm.StaleSlackEvent(t0.Add(-time.Second)) {
		t.Error("an event before the install is stale")
	}
	if tm.StaleSlackEvent(time.Time{}) {
		t.Error("an event without time is not stale")
	}
}

func TestRequireAdminAndErrors(t *testing.T) {
	t.Parallel()
	err := RequireAdmin(Caller{User: User{ID: "u1"}}, "removing a team")
	if !errors.Is(err, ErrPermissionDenied) || err.Error() != "removing a team requires a CRM administrator; u1 is not one" {
		t.Fatalf("%v", err)
	}
	if RequireAdmin(Caller{IsAdmin: true}, "x") != nil {
		t.Fatal("admin refused")
	}
	if !errors.Is(NotFoundTeam("o", "T1"), ErrNotFound) || !errors.Is(NotFoundOrg("o"), ErrNotFound) {
		t.Fatal("not found kinds")
	}
	org := NewOrg("o", t0)
	org.Disable(User{}, t0)
	tm := Team{OrgID: "o", Status: StatusActive}
	if !errors.Is(Unusable(&org, &tm), ErrFailedPrecondition) {
		t.Fatal("disabled org is usable")
	}
	if Unusable(nil, &tm) != nil {
		t.Fatal("active team unusable")
	}
}
