// Package access is sharing's in-memory view of each org's Slack access
// (whether the integration is on, which teams are active), kept current by
// watching the org_access bucket the team registry writes. A share is
// checked against it without a network call, and a disable or a removal
// takes effect within milliseconds.
package access

import (
	"log/slog"
	"sync"
	"sync/atomic"

	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"

	"github.com/crmslack/crmslack/services/sharing/internal/share"
)

// View is safe for concurrent use.
type View struct {
	log    *slog.Logger
	mu     sync.RWMutex
	orgs   map[string]share.Access
	synced atomic.Bool
}

// New returns an empty view; Run fills it.
func New(log *slog.Logger) *View { return &View{log: log, orgs: map[string]share.Access{}} }

// Synced reports whether the bucket's initial values have been read.
func (v *View) Synced() bool { return v.synced.Load() }

// Org returns an org's access, and false for an org never written.
func (v *View) Org(org string) (share.Access, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	a, ok := v.orgs[org]
	return a, ok
}

// Set records an org's access; nil forgets the org.
func (v *View) Set(org string, a *teamsv1.OrgAccess) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if a == nil {
		delete(v.orgs, org)
		return
	}
	sa := share.Access{Enabled: a.GetIntegrationEnabled()}
	for _, t := range a.GetTeams() {
		if t.GetStatus() == teamsv1.TeamStatus_TEAM_STATUS_ACTIVE {
			sa.Teams = append(sa.Teams, t.GetTeamId())
		}
	}
	v.orgs[org] = sa
}

// MarkSynced says the bucket's initial values are in.
func (v *View) MarkSynced() { v.synced.Store(true) }
