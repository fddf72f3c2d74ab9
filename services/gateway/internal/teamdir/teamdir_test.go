package teamdir

import (
	"log/slog"
	"slices"
	"testing"

	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"
)

func access(org string, enabled bool, teams ...string) *teamsv1.OrgAccess {
	a := &teamsv1.OrgAccess{OrgId: org, IntegrationEnabled: enabled}
	for _, t := range teams {
		a.Teams = append(a.Teams, &teamsv1.TeamAccess{TeamId: t, Status: teamsv1.TeamStatus_TEAM_STATUS_ACTIVE})
	}
	return a
}

func TestResolve(t *testing.T) {
	t.Parallel()
	d := New(slog.New(slog.DiscardHandler))
	d.Set("org2", access("org2", true, "T1"))
	d.Set("org1", access("org1", true, "T1", "T2"))
	d.Set("org3", access("org3", false, "T3", "T1"))
	cases := []struct {
		team     string
		orgs     []string
		disabled bool
		known    bool
	}{
		{"T1", []string{"org1", "org2"}, false, true},
		{"T2", []string{"org1"}, false, true},
		{"T3", nil, true, true},
		{"T9", nil, false, false},
	}
	for _, c := range cases {
		r := d.Resolve(c.team)
		if !slices.Equal(r.Orgs, c.orgs) || r.Disabled != c.disabled || r.Known() != c.known {
			t.Errorf("%s: %+v", c.team, r)
		}
	}
	d.Set("org1", nil)
	if r := d.Resolve("T2"); r.Known() {
		t.Errorf("T2 after org1 deleted: %+v", r)
	}
}

// A team whose token needs re-authorizing in an enabled org, and active in
// none, resolves to NeedsReauth: known, but no org to act for.
func TestResolveNeedsReauth(t *testing.T) {
	t.Parallel()
	d := New(slog.New(slog.DiscardHandler))
	broken := func(org string, enabled bool, team string) *teamsv1.OrgAccess {
		return &teamsv1.OrgAccess{OrgId: org, IntegrationEnabled: enabled, Teams: []*teamsv1.TeamAccess{{TeamId: team, Status: teamsv1.TeamStatus_TEAM_STATUS_BROKEN}}}
	}
	d.Set("org1", broken("org1", true, "T1"))
	d.Set("org2", broken("org2", false, "T2"))
	d.Set("org3", broken("org3", true, "T3"))
	d.Set("org4", access("org4", true, "T3"))
	if r := d.Resolve("T1"); !r.NeedsReauth || len(r.Orgs) != 0 || !r.Known() {
		t.Errorf("T1 broken in an enabled org: %+v", r)
	}
	if r := d.Resolve("T2"); r.NeedsReauth || r.Known() {
		t.Errorf("T2 broken in a disabled org: %+v", r)
	}
	if r := d.Resolve("T3"); r.NeedsReauth || !slices.Equal(r.Orgs, []string{"org4"}) {
		t.Errorf("T3 broken in one org, active in another: %+v", r)
	}
}
