// Package orgaccess is the org_access bucket: the team registry writes each
// org's teams.v1.OrgAccess under the org id, and the gateway, the egress and
// sharing follow it in memory, so checking the data boundary costs no
// network call and a removal or a disable takes effect within milliseconds.
package orgaccess

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/topology"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"
)

// BucketConfig is the bucket's configuration. History 1: only an org's
// current access matters.
func BucketConfig(replicas int, storage jetstream.StorageType) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      topology.BucketOrgAccess,
		Description: "teams.v1.OrgAccess per org id, written by the team registry",
		History:     1,
		Replicas:    max(replicas, 1),
		Storage:     storage,
	}
}

// Bucket binds the bucket, creating it when the registry has not yet.
func Bucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, topology.BucketOrgAccess)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, BucketConfig(replicas, jetstream.FileStorage))
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, topology.BucketOrgAccess)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("binding bucket %s: %w", topology.BucketOrgAccess, err)
	}
	return kv, nil
}

// Sink keeps what Watch reads: each service its own index of it.
type Sink interface {
	// Set records an org's access; nil forgets the org.
	Set(org string, a *teamsv1.OrgAccess)
	// MarkSynced says every value present when the watch began is in.
	MarkSynced()
}

// Follow binds the bucket (waiting for the registry to create it) and
// watches it into sink until ctx ends, starting over after retry when the
// watch fails.
func Follow(ctx context.Context, js jetstream.JetStream, sink Sink, retry time.Duration, log *slog.Logger) error {
	for {
		kv, err := js.KeyValue(ctx, topology.BucketOrgAccess)
		if err == nil {
			err = Watch(ctx, kv, sink, log)
		}
		if ctx.Err() != nil {
			return nil
		}
		log.WarnContext(ctx, "following org access; retrying", "bucket", topology.BucketOrgAccess, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(retry):
		}
	}
}

// Watch follows kv into sink until ctx ends (nil) or the watch breaks. An
// entry that cannot be decoded, or whose org id differs from its key,
// forgets the org: refusing is the safe side of a boundary.
func Watch(ctx context.Context, kv jetstream.KeyValue, sink Sink, log *slog.Logger) error {
	return bus.WatchKeyValue(ctx, kv, func(e jetstream.KeyValueEntry) { apply(ctx, sink, e, log) }, func() {
		sink.MarkSynced()
		log.InfoContext(ctx, "org access loaded")
	})
}

func apply(ctx context.Context, sink Sink, e jetstream.KeyValueEntry, log *slog.Logger) {
	org := e.Key()
	if e.Operation() != jetstream.KeyValuePut {
		sink.Set(org, nil)
		log.InfoContext(ctx, "org access removed", "org", org)
		return
	}
	a := &teamsv1.OrgAccess{}
	if err := proto.Unmarshal(e.Value(), a); err != nil {
		sink.Set(org, nil)
		log.ErrorContext(ctx, "undecodable org access; refusing the org until it is rewritten", "org", org, "revision", e.Revision(), "err", err)
		return
	}
	if a.GetOrgId() != org {
		sink.Set(org, nil)
		log.ErrorContext(ctx, "org access stored under another org's key; refusing the org", "key", org, "org_id", a.GetOrgId())
		return
	}
	sink.Set(org, a)
	log.DebugContext(ctx, "org access updated", "org", org, "enabled", a.GetIntegrationEnabled(), "teams", len(a.GetTeams()))
}
