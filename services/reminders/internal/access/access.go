// Package access is reminders' in-memory view of which Slack teams each
// org may reach (integration on, team active), followed from the
// org_access bucket the team registry writes.
package access

import (
	"slices"
	"sync"
	"sync/atomic"

	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"
)

// View is safe for concurrent use; it is an orgaccess.Sink.
type View struct {
	mu     sync.RWMutex
	teams  map[string][]string // org → active teams, only while the integration is on
	synced atomic.Bool
}

// New returns an empty view.
func New() *View { return &View{teams: map[string][]string{}} }

// Set records an org's access; nil forgets the org.
func (v *View) Set(org string, a *teamsv1.OrgAccess) {
	var active []string
	if a.GetIntegrationEnabled() {
		for _, t := range a.GetTeams() {
			if t.GetStatus() == teamsv1.TeamStatus_TEAM_STATUS_ACTIVE {
				active = append(active, t.GetTeamId())
			}
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if a == nil {
		delete(v.teams, org)
		return
	}
	v.teams[org] = active
}

// MarkSynced says the bucket's initial values are in.
func (v *View) MarkSynced() { v.synced.Store(true) }

// Synced reports whether the initial values are in.
func (v *View) Synced() bool { return v.synced.Load() }

// TeamActive reports whether the org's integration is on and team is one
// of its active teams.
func (v *View) TeamActive(org, team string) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return team != "" && slices.Contains(v.teams[org], team)
}
