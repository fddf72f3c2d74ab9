// Package teamdir is the gateway's in-memory map from Slack team to the CRM
// orgs that use it, kept current by watching the org_access bucket the team
// registry writes. The gateway answers a slash command from an unknown
// workspace at once, without a network call, and stamps the owning org on
// what it publishes when there is exactly one.
package teamdir

import (
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"
)

// Resolution is what the directory knows of a team.
type Resolution struct {
	// Orgs with the team active and the integration on, sorted.
	Orgs []string
	// Disabled is true when the team is active only in orgs whose
	// integration is off.
	Disabled bool
	// NeedsReauth is true when the team is active in no org and some org
	// with the integration on holds it with a token Slack no longer
	// honours: its users are told to reconnect Slack.
	NeedsReauth bool
}

// Known reports whether some org uses the team.
func (r Resolution) Known() bool { return len(r.Orgs) > 0 || r.Disabled || r.NeedsReauth }

// Directory is safe for concurrent use.
type Directory struct {
	log    *slog.Logger
	mu     sync.RWMutex
	orgs   map[string]*teamsv1.OrgAccess
	teams  map[string]Resolution
	synced atomic.Bool
}

// New returns an empty directory; Run fills it.
func New(log *slog.Logger) *Directory {
	return &Directory{log: log, orgs: map[string]*teamsv1.OrgAccess{}, teams: map[string]Resolution{}}
}

// Synced reports whether the bucket's initial values have been read.
func (d *Directory) Synced() bool { return d.synced.Load() }

// MarkSynced says the bucket's initial values are in.
func (d *Directory) MarkSynced() { d.synced.Store(true) }

// Resolve looks a team up.
func (d *Directory) Resolve(team string) Resolution {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.teams[team]
}

// Set records an org's access (nil removes the org) and rebuilds the team
// index. Orgs are few and change rarely, so a rebuild is fine.
func (d *Directory) Set(org string, a *teamsv1.OrgAccess) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if a == nil {
		delete(d.orgs, org)
	} else {
		d.orgs[org] = a
	}
	teams := make(map[string]Resolution, len(d.teams))
	for id, oa := range d.orgs {
		for _, t := range oa.GetTeams() {
			r := teams[t.GetTeamId()]
			if t.GetStatus() == teamsv1.TeamStatus_TEAM_STATUS_BROKEN && oa.GetIntegrationEnabled() {
				r.NeedsReauth = true
				teams[t.GetTeamId()] = r
			}
			if t.GetStatus() != teamsv1.TeamStatus_TEAM_STATUS_ACTIVE {
				continue
			}
			if oa.GetIntegrationEnabled() {
				r.Orgs = append(r.Orgs, id)
			} else {
				r.Disabled = true
			}
			teams[t.GetTeamId()] = r
		}
	}
	for id, r := range teams {
		slices.Sort(r.Orgs)
		r.Disabled = r.Disabled && len(r.Orgs) == 0
		r.NeedsReauth = r.NeedsReauth && len(r.Orgs) == 0 && !r.Disabled
		teams[id] = r
	}
	d.teams = teams
}
