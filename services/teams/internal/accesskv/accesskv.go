// Package accesskv keeps each org's teams.v1.OrgAccess in the JetStream
// key-value bucket topology.BucketOrgAccess, keyed by org id. The Slack
// egress watches the bucket and enforces the data boundary from memory.
//
// Writes are compare-and-set on the key's revision, and the revision is
// read before the value is computed from the database: a writer that
// computed from older data finds the revision moved, recomputes and writes
// again, so the bucket never goes back to an older state, even with several
// registry replicas.
package accesskv

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/crmslack/crmslack/libs/bus"
	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/orgaccess"
	"github.com/crmslack/crmslack/libs/topology"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"

	"github.com/crmslack/crmslack/services/teams/internal/pbconv"
	"github.com/crmslack/crmslack/services/teams/internal/registry"
)

// Ensure creates or updates the bucket.
func Ensure(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	kv, err := bus.BindKeyValue(ctx, js, orgaccess.BucketConfig(replicas, jetstream.FileStorage))
	if err != nil {
		return nil, fmt.Errorf("ensuring bucket %s: %w", topology.BucketOrgAccess, err)
	}
	return kv, nil
}

// Store writes OrgAccess values.
type Store struct{ kv jetstream.KeyValue }

// New returns a store over kv.
func New(kv jetstream.KeyValue) *Store { return &Store{kv: kv} }

const maxAttempts = 10

// Sync writes compute's result for org unless the bucket already holds the
// same access (timestamps aside).
func (s *Store) Sync(ctx context.Context, org string, compute func(context.Context) (registry.Access, error)) error {
	key, err := topology.Token(org)
	if err != nil {
		return fmt.Errorf("org access key: %w", err)
	}
	for attempt := 1; ; attempt++ {
		var rev uint64
		var current *teamsv1.OrgAccess
		entry, err := s.kv.Get(ctx, key)
		switch {
		case err == nil:
			rev = entry.Revision()
			current = &teamsv1.OrgAccess{}
			if err := proto.Unmarshal(entry.Value(), current); err != nil {
				current = nil // overwrite what cannot be read
			}
		case errors.Is(err, jetstream.ErrKeyNotFound):
		default:
			return fmt.Errorf("reading access of org %s: %w", org, err)
		}
		a, err := compute(ctx)
		if err != nil {
			return fmt.Errorf("computing access of org %s: %w", org, err)
		}
		next := pbconv.Access(a)
		if current != nil && sameAccess(current, next) {
			return nil
		}
		data, err := proto.MarshalOptions{Deterministic: true}.Marshal(next)
		if err != nil {
			return fmt.Errorf("encoding access of org %s: %w", org, err)
		}
		if rev == 0 {
			_, err = s.kv.Create(ctx, key, data)
		} else {
			_, err = s.kv.Update(ctx, key, data, rev)
		}
		if err == nil {
			return nil
		}
		conflict := errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
		if !conflict || attempt >= maxAttempts {
			return fmt.Errorf("writing access of org %s: %w", org, err)
		}
	}
}

func sameAccess(a, b *teamsv1.OrgAccess) bool {
	a, b = proto.CloneOf(a), proto.CloneOf(b)
	a.UpdatedAt, b.UpdatedAt = nil, nil
	return proto.Equal(a, b)
}

// Load reads an org's access (tests and tools).
func Load(ctx context.Context, kv jetstream.KeyValue, org string) (*teamsv1.OrgAccess, error) {
	entry, err := kv.Get(ctx, org)
	if err != nil {
		return nil, err
	}
	a := &teamsv1.OrgAccess{}
	if err := proto.Unmarshal(entry.Value(), a); err != nil {
		return nil, fmt.Errorf("decoding access of org %s: %w", org, err)
	}
	return a, nil
}
