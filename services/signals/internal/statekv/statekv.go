// Package statekv keeps the signal state in the JetStream key-value bucket
// signals_state: storm-control groups (written at a revision, so concurrent
// writers cannot lose a signal; each remembers the signal events it and its
// predecessors held), and create-only markers of the owners reported
// unreachable. FerretDB would scan a collection on every read; a key-value
// get does not.
package statekv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/crmslack/crmslack/libs/topology"

	"github.com/crmslack/crmslack/services/signals/internal/app"
	"github.com/crmslack/crmslack/services/signals/internal/burst"
)

// TTL is how long entries live: the CRM stream keeps events 7 days, so a
// signal redelivered or replayed within them is still recognised (a group
// is rewritten by every signal of its customer and owner).
const TTL = 7 * 24 * time.Hour

// BucketConfig is the bucket's configuration.
func BucketConfig(replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      topology.BucketSignalsState,
		Description: "signals: storm-control groups, reported owners",
		History:     1,
		TTL:         TTL,
		Replicas:    max(replicas, 1),
		Storage:     jetstream.FileStorage,
	}
}

// Bind creates or binds the bucket.
func Bind(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, BucketConfig(replicas))
	if err != nil {
		return nil, fmt.Errorf("binding bucket %s: %w", topology.BucketSignalsState, err)
	}
	return kv, nil
}

// State implements app.State.
type State struct{ kv jetstream.KeyValue }

// New returns the state on kv.
func New(kv jetstream.KeyValue) *State { return &State{kv: kv} }

// Group reads a group.
func (s *State) Group(ctx context.Context, key string) (*burst.Group, uint64, error) {
	e, err := s.kv.Get(ctx, "g."+key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("reading group %s: %w", key, err)
	}
	var g burst.Group
	if err := json.Unmarshal(e.Value(), &g); err != nil || len(g.Entries) == 0 {
		// A group that cannot be read is started over, not retried forever:
		// at worst one message more for that customer.
		return nil, e.Revision(), nil
	}
	return &g, e.Revision(), nil
}

// PutGroup writes a group at a revision.
func (s *State) PutGroup(ctx context.Context, key string, g burst.Group, rev uint64) (uint64, error) {
	data, err := json.Marshal(g)
	if err != nil {
		return 0, fmt.Errorf("encoding group %s: %w", key, err)
	}
	var nrev uint64
	if rev == 0 {
		nrev, err = s.kv.Create(ctx, "g."+key, data)
	} else {
		nrev, err = s.kv.Update(ctx, "g."+key, data, rev)
	}
	return nrev, conflict(err, "writing group "+key)
}

// DeleteGroup removes a group at a revision.
func (s *State) DeleteGroup(ctx context.Context, key string, rev uint64) error {
	return conflict(s.kv.Delete(ctx, "g."+key, jetstream.LastRevision(rev)), "deleting group "+key)
}

// Reported reports whether an owner was reported unreachable.
func (s *State) Reported(ctx context.Context, org, owner string) (bool, error) {
	return s.has(ctx, "u."+hash(org, owner))
}

// MarkReported marks an owner reported.
func (s *State) MarkReported(ctx context.Context, org, owner string) error {
	return s.mark(ctx, "u."+hash(org, owner))
}

func (s *State) has(ctx context.Context, key string) (bool, error) {
	_, err := s.kv.Get(ctx, key)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
		return false, nil
	}
	return false, fmt.Errorf("reading %s: %w", key, err)
}

func (s *State) mark(ctx context.Context, key string) error {
	_, err := s.kv.Create(ctx, key, []byte{1})
	if err == nil || errors.Is(err, jetstream.ErrKeyExists) {
		return nil
	}
	return fmt.Errorf("writing %s: %w", key, err)
}

func conflict(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return app.ErrConflict
	}
	return fmt.Errorf("%s: %w", what, err)
}

func hash(org, id string) string {
	h := sha256.Sum256([]byte(org + "\x00" + id))
	return hex.EncodeToString(h[:16])
}
