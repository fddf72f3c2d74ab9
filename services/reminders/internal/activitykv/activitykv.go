// Package activitykv keeps each activity's latest state in the
// reminder_activities JetStream key-value bucket, keyed <org>.<activity>.
// It is read on the hot path (every fired reminder checks the activity's
// current version) and written with compare-and-set on every change, so
// replicas handling events of one activity concurrently cannot overwrite
// a newer version with an older one. A document store that scans the
// whole collection per read (FerretDB) could not serve either.
package activitykv

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/crmslack/crmslack/libs/bus"
	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/topology"
	remindersv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/reminders/v1"

	"github.com/crmslack/crmslack/services/reminders/internal/app"
)

// Config is the bucket: one value per activity (history 1), no expiry
// (an activity may be months ahead).
func Config(replicas int, storage jetstream.StorageType) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      topology.BucketReminderActivities,
		Description: "reminders.v1.ActivityState per <org>.<activity id>",
		History:     1,
		Replicas:    max(replicas, 1),
		Storage:     storage,
	}
}

// Store is the bucket.
type Store struct{ kv jetstream.KeyValue }

// Ensure creates or updates the bucket and binds it.
func Ensure(ctx context.Context, js jetstream.JetStream, replicas int, storage jetstream.StorageType) (*Store, error) {
	kv, err := bus.BindKeyValue(ctx, js, Config(replicas, storage))
	if err != nil {
		return nil, fmt.Errorf("ensuring bucket %s: %w", topology.BucketReminderActivities, err)
	}
	return &Store{kv: kv}, nil
}

func key(org, activity string) (string, error) {
	for _, t := range []string{org, activity} {
		if _, err := topology.Token(t); err != nil {
			return "", err
		}
	}
	return org + "." + activity, nil
}

// Get returns the state and its revision; nil and 0 for an unknown
// activity.
func (s *Store) Get(ctx context.Context, org, activity string) (*remindersv1.ActivityState, uint64, error) {
	k, err := key(org, activity)
	if err != nil {
		return nil, 0, err
	}
	e, err := s.kv.Get(ctx, k)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("reading activity %s: %w", k, err)
	}
	var st remindersv1.ActivityState
	if err := proto.Unmarshal(e.Value(), &st); err != nil {
		return nil, 0, fmt.Errorf("decoding activity %s: %w", k, err)
	}
	return &st, e.Revision(), nil
}

// Put stores st if the activity's revision is still rev (0: absent);
// ErrConflict otherwise.
func (s *Store) Put(ctx context.Context, st *remindersv1.ActivityState, rev uint64) error {
	k, err := key(st.GetOrgId(), st.GetActivity().GetId())
	if err != nil {
		return err
	}
	data, err := proto.Marshal(st)
	if err != nil {
		return fmt.Errorf("encoding activity %s: %w", k, err)
	}
	if rev == 0 {
		_, err = s.kv.Create(ctx, k, data)
	} else {
		_, err = s.kv.Update(ctx, k, data, rev)
	}
	switch {
	case err == nil:
		return nil
	// Create reports a taken key as ErrKeyExists, Update a moved revision as
	// ErrKeyRevisionMismatch (which also covers replicated buckets' code).
	case errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return fmt.Errorf("activity %s changed concurrently: %w", k, app.ErrConflict)
	default:
		return fmt.Errorf("writing activity %s: %w", k, err)
	}
}

// IndexConfig is the bucket of who takes part in which activity, keyed
// <org>.<user>.<activity>: turning reminders on finds the user's
// activities there without scanning every activity.
func IndexConfig(replicas int, storage jetstream.StorageType) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      topology.BucketReminderPeople,
		Description: "the activities each CRM user takes part in, keyed <org>.<user>.<activity>",
		History:     1,
		Replicas:    max(replicas, 1),
		Storage:     storage,
	}
}

// Index is the people-to-activities bucket.
type Index struct{ kv jetstream.KeyValue }

// EnsureIndex creates or updates the bucket and binds it.
func EnsureIndex(ctx context.Context, js jetstream.JetStream, replicas int, storage jetstream.StorageType) (*Index, error) {
	kv, err := bus.BindKeyValue(ctx, js, IndexConfig(replicas, storage))
	if err != nil {
		return nil, fmt.Errorf("ensuring bucket %s: %w", topology.BucketReminderPeople, err)
	}
	return &Index{kv: kv}, nil
}

// Add records that user takes part in activity. A user later removed from
// the activity stays listed; readers check the activity itself.
func (x *Index) Add(ctx context.Context, org, user, activity string) error {
	k, err := key(org, user)
	if err != nil {
		return err
	}
	if _, err := topology.Token(activity); err != nil {
		return err
	}
	if _, err := x.kv.Put(ctx, k+"."+activity, nil); err != nil {
		return fmt.Errorf("indexing activity %s for %s: %w", activity, k, err)
	}
	return nil
}

// Of lists the activities user takes part in.
func (x *Index) Of(ctx context.Context, org, user string) ([]string, error) {
	k, err := key(org, user)
	if err != nil {
		return nil, err
	}
	l, err := x.kv.ListKeysFiltered(ctx, k+".*")
	if err != nil {
		return nil, fmt.Errorf("listing activities of %s: %w", k, err)
	}
	defer func() { _ = l.Stop() }()
	var out []string
	for key := range l.Keys() {
		out = append(out, key[len(k)+1:])
	}
	return out, nil
}
