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
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/topology"
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

// MarkReady declares the initial load complete.
func (m *Model) MarkReady() { m.once.Do(func() { close(m.ready) }) }

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

// BucketConfig is the org_access bucket as the team registry creates it;
// delivery creates it the same way when it starts first.
func BucketConfig(replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      topology.BucketOrgAccess,
		Description: "teams.v1.OrgAccess per org id, written by the team registry",
		History:     1,
		Replicas:    max(replicas, 1),
		Storage:     jetstream.FileStorage,
	}
}

// Bucket binds the org_access bucket, creating it when the registry has not
// yet.
func Bucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, topology.BucketOrgAccess)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, BucketConfig(replicas))
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, topology.BucketOrgAccess)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("binding bucket %s: %w", topology.BucketOrgAccess, err)
	}
	return kv, nil
}

// Watch follows kv into m until ctx ends, marking m ready after the initial
// values. An entry that cannot be decoded, or whose org id differs from its
// key, forgets the org: refusing is the safe side of a boundary.
func Watch(ctx context.Context, kv jetstream.KeyValue, m *Model, log *slog.Logger) error {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watching bucket %s: %w", kv.Bucket(), err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("watch of bucket %s ended", kv.Bucket())
			}
			if e == nil { // the initial values have all been delivered
				m.MarkReady()
				log.InfoContext(ctx, "org access loaded", "orgs", m.Len())
				continue
			}
			apply(ctx, m, e, log)
		}
	}
}

func apply(ctx context.Context, m *Model, e jetstream.KeyValueEntry, log *slog.Logger) {
	orgID := e.Key()
	if e.Operation() != jetstream.KeyValuePut {
		m.Set(orgID, nil)
		log.InfoContext(ctx, "org access removed", "org", orgID)
		return
	}
	a := &teamsv1.OrgAccess{}
	if err := proto.Unmarshal(e.Value(), a); err != nil {
		m.Set(orgID, nil)
		log.ErrorContext(ctx, "undecodable org access; refusing the org until it is rewritten", "org", orgID, "revision", e.Revision(), "err", err)
		return
	}
	if a.GetOrgId() != orgID {
		m.Set(orgID, nil)
		log.ErrorContext(ctx, "org access stored under another org's key; refusing the org", "key", orgID, "org_id", a.GetOrgId())
		return
	}
	m.Set(orgID, a)
	log.DebugContext(ctx, "org access updated", "org", orgID, "enabled", a.GetIntegrationEnabled(), "teams", len(a.GetTeams()))
}
