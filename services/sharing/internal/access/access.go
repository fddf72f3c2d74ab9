// Package access is sharing's in-memory view of each org's Slack access
// (whether the integration is on, which teams are active), kept current by
// watching the org_access bucket the team registry writes. A share is
// checked against it without a network call, and a disable or a removal
// takes effect within milliseconds.
package access

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/topology"
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

// MarkSynced says the initial values are in (tests that fill the view by
// hand).
func (v *View) MarkSynced() { v.synced.Store(true) }

// Run watches the bucket until ctx ends. The team registry creates it;
// until it exists Run retries every retry.
func (v *View) Run(ctx context.Context, js jetstream.JetStream, retry time.Duration) error {
	for {
		err := v.watch(ctx, js)
		if ctx.Err() != nil {
			return nil
		}
		v.log.WarnContext(ctx, "watching org access; retrying", "bucket", topology.BucketOrgAccess, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(retry):
		}
	}
}

func (v *View) watch(ctx context.Context, js jetstream.JetStream) error {
	kv, err := js.KeyValue(ctx, topology.BucketOrgAccess)
	if err != nil {
		return fmt.Errorf("binding bucket: %w", err)
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watching bucket: %w", err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("watcher closed")
			}
			if e == nil { // every initial value has been delivered
				if !v.synced.Swap(true) {
					v.log.InfoContext(ctx, "org access loaded")
				}
				continue
			}
			if e.Operation() != jetstream.KeyValuePut {
				v.Set(e.Key(), nil)
				continue
			}
			a := &teamsv1.OrgAccess{}
			if err := proto.Unmarshal(e.Value(), a); err != nil {
				v.log.ErrorContext(ctx, "undecodable org access ignored", "org", e.Key(), "err", err)
				continue
			}
			v.Set(e.Key(), a)
		}
	}
}
