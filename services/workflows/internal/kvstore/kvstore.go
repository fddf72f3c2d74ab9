// Package kvstore keeps workflow actions, the latest schema of each module
// and each org's format in the JetStream key-value bucket "workflows":
// create-only and compare-and-set writes by revision, and a watch that
// loads every value at start and then follows every replica's changes
// into the read model. A few thousand small values, read only at start:
// the bucket serves better than a database FerretDB would scan.
package kvstore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/topology"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	workflowsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/workflows/v1"

	"github.com/crmslack/crmslack/services/workflows/internal/action"
	"github.com/crmslack/crmslack/services/workflows/internal/pbconv"
	"github.com/crmslack/crmslack/services/workflows/internal/valuefmt"
)

// Key prefixes.
const (
	prefixAction = "action."
	prefixSchema = "schema."
	prefixFormat = "format."
)

// BucketConfig is the bucket's configuration. History 1: only the current
// value of each key matters.
func BucketConfig(replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      topology.BucketWorkflows,
		Description: "workflow actions, module schemas and org formats of the workflows service",
		History:     1,
		Replicas:    max(replicas, 1),
		Storage:     jetstream.FileStorage,
	}
}

// Store implements app.Store.
type Store struct{ kv jetstream.KeyValue }

// New returns the store on kv.
func New(kv jetstream.KeyValue) *Store { return &Store{kv: kv} }

var orgKey = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func orgPart(org string) (string, error) {
	if !orgKey.MatchString(org) {
		return "", action.Errorf(action.ErrInvalid, "org id %q: workflow actions are kept for org ids of letters, digits, '-' and '_'", org)
	}
	return org, nil
}

func actionKey(org, id string) (string, error) {
	o, err := orgPart(org)
	if err != nil {
		return "", err
	}
	return prefixAction + o + "." + id, nil
}

func unavailable(what string, err error) error {
	return action.Errorf(action.ErrUnavailable, "%s: %v", what, err)
}

// CreateAction stores a new action; its id must be free.
func (s *Store) CreateAction(ctx context.Context, a *action.Action) (uint64, error) {
	key, err := actionKey(a.Org, a.ID)
	if err != nil {
		return 0, err
	}
	b, err := proto.Marshal(pbconv.Action(a))
	if err != nil {
		return 0, fmt.Errorf("encoding action %s: %w", a.ID, err)
	}
	rev, err := s.kv.Create(ctx, key, b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, action.Errorf(action.ErrConflict, "action %s exists", a.ID)
	}
	if err != nil {
		return 0, unavailable("storing the action", err)
	}
	return rev, nil
}

// UpdateAction replaces an action at revision expected.
func (s *Store) UpdateAction(ctx context.Context, a *action.Action, expected uint64) (uint64, error) {
	key, err := actionKey(a.Org, a.ID)
	if err != nil {
		return 0, err
	}
	b, err := proto.Marshal(pbconv.Action(a))
	if err != nil {
		return 0, fmt.Errorf("encoding action %s: %w", a.ID, err)
	}
	rev, err := s.kv.Update(ctx, key, b, expected)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, action.Errorf(action.ErrConflict, "action %s was changed meanwhile (revision %d is not the latest): read it again", a.ID, expected)
	}
	if err != nil {
		return 0, unavailable("storing the action", err)
	}
	return rev, nil
}

// DeleteAction deletes an action; deleting a deleted one is no error.
func (s *Store) DeleteAction(ctx context.Context, org, id string) error {
	key, err := actionKey(org, id)
	if err != nil {
		return err
	}
	if err := s.kv.Delete(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return unavailable("deleting the action", err)
	}
	return nil
}

// PutSchema keeps a module's latest schema; the module is hex-encoded in
// the key, since module names may hold characters keys may not.
func (s *Store) PutSchema(ctx context.Context, org string, sc *crmv1.ModuleSchema) error {
	o, err := orgPart(org)
	if err != nil {
		return err
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(sc)
	if err != nil {
		return fmt.Errorf("encoding schema: %w", err)
	}
	if _, err := s.kv.Put(ctx, prefixSchema+o+"."+hex.EncodeToString([]byte(sc.GetModule())), b); err != nil {
		return unavailable("storing the schema", err)
	}
	return nil
}

// PutFormat keeps an org's format.
func (s *Store) PutFormat(ctx context.Context, org string, f valuefmt.Format) error {
	o, err := orgPart(org)
	if err != nil {
		return err
	}
	b, err := proto.Marshal(&workflowsv1.OrgFormat{Locale: f.Locale(), CurrencyCode: f.Currency(), TimeZone: f.TimeZone()})
	if err != nil {
		return fmt.Errorf("encoding format: %w", err)
	}
	if _, err := s.kv.Put(ctx, prefixFormat+o, b); err != nil {
		return unavailable("storing the format", err)
	}
	return nil
}

// Sink is what the watch fills (readmodel.Model).
type Sink interface {
	Put(a *action.Action)
	Delete(org, id string, rev uint64)
	PutSchema(org string, s *crmv1.ModuleSchema)
	PutFormat(org string, f valuefmt.Format)
	MarkSynced()
}

// Follow watches the bucket into sink until ctx ends, starting over after
// retry when the watch breaks.
func Follow(ctx context.Context, kv jetstream.KeyValue, sink Sink, retry time.Duration, log *slog.Logger) error {
	return bus.FollowKeyValue(ctx, kv, retry, log, "the workflows bucket", func(e jetstream.KeyValueEntry) {
		if err := apply(sink, e); err != nil {
			// One bad value must not hide the others; it is logged and
			// left out, as its action could not fire anyway.
			log.ErrorContext(ctx, "undecodable value in the workflows bucket; left out", "key", e.Key(), "revision", e.Revision(), "err", err)
		}
	}, func() {
		sink.MarkSynced()
		log.InfoContext(ctx, "workflow actions loaded")
	})
}

func apply(sink Sink, e jetstream.KeyValueEntry) error {
	key := e.Key()
	put := e.Operation() == jetstream.KeyValuePut
	switch {
	case strings.HasPrefix(key, prefixAction):
		org, id, ok := strings.Cut(strings.TrimPrefix(key, prefixAction), ".")
		if !ok {
			return errors.New("malformed action key")
		}
		if !put {
			sink.Delete(org, id, e.Revision())
			return nil
		}
		var m workflowsv1.Action
		if err := proto.Unmarshal(e.Value(), &m); err != nil {
			return err
		}
		a, err := pbconv.FromAction(&m, e.Revision())
		if err != nil {
			return err
		}
		if a.Org != org || a.ID != id {
			return fmt.Errorf("action %s/%s stored under another key", a.Org, a.ID)
		}
		sink.Put(a)
	case strings.HasPrefix(key, prefixSchema) && put:
		org, _, _ := strings.Cut(strings.TrimPrefix(key, prefixSchema), ".")
		var sc crmv1.ModuleSchema
		if err := proto.Unmarshal(e.Value(), &sc); err != nil {
			return err
		}
		sink.PutSchema(org, &sc)
	case strings.HasPrefix(key, prefixFormat) && put:
		var m workflowsv1.OrgFormat
		if err := proto.Unmarshal(e.Value(), &m); err != nil {
			return err
		}
		f, err := valuefmt.New(m.GetLocale(), m.GetCurrencyCode(), m.GetTimeZone())
		if err != nil {
			return err
		}
		sink.PutFormat(strings.TrimPrefix(key, prefixFormat), f)
	}
	return nil
}
