// Package access is the signals service's in-memory view of each org's
// Slack access (integration on, active teams), kept current by following
// the team registry's org_access bucket (libs/orgaccess).
package access

import (
	"slices"
	"sync"
	"sync/atomic"

	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"
)

type org struct {
	enabled bool
	teams   []string
}

// View implements app.Access and orgaccess.Sink. Safe for concurrent use.
type View struct {
	mu     sync.RWMutex
	orgs   map[string]org
	synced atomic.Bool
}

// New returns an empty view.
func New() *View { return &View{orgs: map[string]org{}} }

// Org reports an org's access; its active teams in id order.
func (v *View) Org(id string) (bool, []string, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	o, ok := v.orgs[id]
	return o.enabled, o.teams, ok
}

// Set records an org's access; nil forgets the org.
func (v *View) Set(id string, a *teamsv1.OrgAccess) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if a == nil {
		delete(v.orgs, id)
		return
	}
	o := org{enabled: a.GetIntegrationEnabled()}
	for _, t := range a.GetTeams() {
		if t.GetStatus() == teamsv1.TeamStatus_TEAM_STATUS_ACTIVE {
			o.teams = append(o.teams, t.GetTeamId())
		}
	}
	slices.Sort(o.teams)
	v.orgs[id] = o
}

// MarkSynced says the bucket's initial values are in.
func (v *View) MarkSynced() { v.synced.Store(true) }

// Synced reports whether they are.
func (v *View) Synced() bool { return v.synced.Load() }
