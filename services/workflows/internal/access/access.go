// Package access is workflows' in-memory view of each org's Slack access
// (integration on, active teams), kept current by libs/orgaccess from the
// org_access bucket the team registry writes: a firing checks it without
// a network call, and a disable or a removal takes effect within
// milliseconds.
package access

import (
	"sync"
	"sync/atomic"

	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"
)

type org struct {
	enabled bool
	teams   map[string]bool
}

// View implements app.Access and orgaccess.Sink.
type View struct {
	mu     sync.RWMutex
	orgs   map[string]org
	synced atomic.Bool
}

// New returns an empty view.
func New() *View { return &View{orgs: map[string]org{}} }

// Set records an org's access; nil forgets the org.
func (v *View) Set(id string, a *teamsv1.OrgAccess) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if a == nil {
		delete(v.orgs, id)
		return
	}
	o := org{enabled: a.GetIntegrationEnabled(), teams: map[string]bool{}}
	for _, t := range a.GetTeams() {
		if t.GetStatus() == teamsv1.TeamStatus_TEAM_STATUS_ACTIVE {
			o.teams[t.GetTeamId()] = true
		}
	}
	v.orgs[id] = o
}

// MarkSynced says the bucket's initial values are in.
func (v *View) MarkSynced() { v.synced.Store(true) }

// Synced reports whether they are.
func (v *View) Synced() bool { return v.synced.Load() }

// Enabled reports whether the org's integration is on.
func (v *View) Enabled(id string) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.orgs[id].enabled
}

// TeamActive reports whether team is active for the org.
func (v *View) TeamActive(id, team string) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.orgs[id].teams[team]
}
