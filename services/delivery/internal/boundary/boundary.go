// Package boundary enforces the data boundary: CRM data goes only to a team
// that is registered and active for the org, and only while the org's
// integration is on ("Les données CRM ne peuvent être transmises qu'aux
// utilisateurs et aux canaux de ces équipes").
//
// The team registry keeps each org's teams.v1.OrgAccess in the JetStream
// key-value bucket topology.BucketOrgAccess; [Watch] follows the bucket and
// keeps the latest value per org in memory, so a check costs no network call
// and a removal or a disable takes effect as soon as the registry writes it.
// Until the first full read of the bucket the model refuses nothing and
// answers nothing: [Model.Ready] says when it may be used.
package boundary

import (
	"sync"

	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"

	"github.com/crmslack/crmslack/services/delivery/internal/failure"
)

// Model is the in-memory read model of every org's access. Safe for
// concurrent use.
type Model struct {
	mu    sync.RWMutex
	orgs  map[string]org
	ready chan struct{}
	once  sync.Once
}

type org struct {
	enabled bool
	teams   map[string]bool
}

// NewModel returns an empty model, not ready.
func NewModel() *Model {
	return &Model{orgs: map[string]org{}, ready: make(chan struct{})}
}

// Ready is closed once the model holds the whole bucket.
func (m *Model) Ready() <-chan struct{} { return m.ready }

// MarkSynced declares the initial load complete.
func (m *Model) MarkSynced() { m.once.Do(func() { close(m.ready) }) }

// Check returns nil when team may receive org's data, or a *failure.Error
// saying why not.
func (m *Model) Check(orgID, teamID string) error {
	m.mu.RLock()
	o, ok := m.orgs[orgID]
	m.mu.RUnlock()
	switch {
	case !ok:
		return failure.New(failure.TeamNotRegistered, "org %s has no Slack team registered", orgID)
	case !o.enabled:
		return failure.New(failure.IntegrationDisabled, "the Slack integration of org %s is disabled", orgID)
	case !o.teams[teamID]:
		return failure.New(failure.TeamNotRegistered, "team %s is not registered for org %s, or was removed", teamID, orgID)
	}
	return nil
}

// Set records org's access; a nil access forgets the org.
func (m *Model) Set(orgID string, a *teamsv1.OrgAccess) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if a == nil {
		delete(m.orgs, orgID)
		return
	}
	o := org{enabled: a.GetIntegrationEnabled(), teams: make(map[string]bool, len(a.GetTeams()))}
	for _, t := range a.GetTeams() {
		// Only active teams appear, says the contract; a status other
		// than active (or unset) is refused all the same.
		switch t.GetStatus() {
		case teamsv1.TeamStatus_TEAM_STATUS_ACTIVE, teamsv1.TeamStatus_TEAM_STATUS_UNSPECIFIED:
			o.teams[t.GetTeamId()] = true
		}
	}
	m.orgs[orgID] = o
}

// Len is the number of orgs known.
func (m *Model) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.orgs)
}
