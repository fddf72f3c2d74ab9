// Package settingskv keeps each org's SalesSignals settings in the JetStream
// key-value bucket signals_settings (signals.v1.Settings under the org id)
// and follows the bucket into memory: a signal reads its org's matrix on
// every event, which must cost no network call, and every replica sees an
// admin's change within milliseconds.
package settingskv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	signalsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/signals/v1"

	"github.com/crmslack/crmslack/services/signals/internal/app"
	"github.com/crmslack/crmslack/services/signals/internal/matrix"
)

// BucketConfig is the bucket's configuration: history 5 keeps the last few
// versions for an operator to look back at.
func BucketConfig(replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      topology.BucketSignalsSettings,
		Description: "signals.v1.Settings per org id, written by the signals service",
		History:     5,
		Replicas:    max(replicas, 1),
		Storage:     jetstream.FileStorage,
	}
}

// Store implements app.SettingsStore.
type Store struct{ kv jetstream.KeyValue }

// NewStore returns the store on kv.
func NewStore(kv jetstream.KeyValue) *Store { return &Store{kv: kv} }

// Load reads an org's settings.
func (s *Store) Load(ctx context.Context, org string) (matrix.Settings, uint64, error) {
	e, err := s.kv.Get(ctx, org)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return matrix.Settings{Org: org}, 0, nil
	}
	if err != nil {
		return matrix.Settings{}, 0, fmt.Errorf("reading settings of %s: %w", org, err)
	}
	st, err := Decode(e.Value())
	if err != nil {
		return matrix.Settings{}, 0, fmt.Errorf("settings of %s at revision %d: %w", org, e.Revision(), err)
	}
	st.Version = e.Revision()
	return st, e.Revision(), nil
}

// Save writes st at revision rev.
func (s *Store) Save(ctx context.Context, st matrix.Settings, rev uint64) (uint64, error) {
	data, err := proto.Marshal(Encode(st))
	if err != nil {
		return 0, fmt.Errorf("encoding settings: %w", err)
	}
	var nrev uint64
	if rev == 0 {
		nrev, err = s.kv.Create(ctx, st.Org, data)
	} else {
		nrev, err = s.kv.Update(ctx, st.Org, data, rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, app.ErrConflict
	}
	if err != nil {
		return 0, fmt.Errorf("writing settings of %s: %w", st.Org, err)
	}
	return nrev, nil
}

// Encode is the stored form: only the cells that differ from the defaults.
func Encode(st matrix.Settings) *signalsv1.Settings {
	out := &signalsv1.Settings{
		OrgId: st.Org, DefaultTeamId: st.DefaultTeam, OwnerTeams: maps.Clone(st.OwnerTeams),
		Version: int64(st.Version),
	}
	for _, c := range st.Matrix.Cells() {
		if c.Enabled != c.Default {
			out.Cells = append(out.Cells, &signalsv1.Cell{Channel: c.Channel, Kind: c.Kind, Slack: c.Enabled})
		}
	}
	if !st.UpdatedAt.IsZero() {
		out.UpdatedAt = timestamppb.New(st.UpdatedAt)
	}
	if st.UpdatedBy != (matrix.Person{}) {
		out.UpdatedBy = &commonv1.CrmUserRef{Id: st.UpdatedBy.ID, Name: st.UpdatedBy.Name, Email: st.UpdatedBy.Email}
	}
	return out
}

// Decode reads the stored form.
func Decode(data []byte) (matrix.Settings, error) {
	p := &signalsv1.Settings{}
	if err := proto.Unmarshal(data, p); err != nil {
		return matrix.Settings{}, fmt.Errorf("undecodable settings: %w", err)
	}
	cells := map[matrix.Key]bool{}
	for _, c := range p.GetCells() {
		cells[matrix.Key{Channel: c.GetChannel(), Kind: c.GetKind()}] = c.GetSlack()
	}
	st := matrix.Settings{
		Org: p.GetOrgId(), Matrix: matrix.FromOverrides(cells), DefaultTeam: p.GetDefaultTeamId(),
		OwnerTeams: maps.Clone(p.GetOwnerTeams()),
	}
	if p.GetUpdatedAt() != nil {
		st.UpdatedAt = p.GetUpdatedAt().AsTime()
	}
	if u := p.GetUpdatedBy(); u != nil {
		st.UpdatedBy = matrix.Person{ID: u.GetId(), Name: u.GetName(), Email: u.GetEmail()}
	}
	return st, nil
}

// View implements app.SettingsView. Safe for concurrent use.
type View struct {
	mu     sync.RWMutex
	orgs   map[string]matrix.Settings
	synced atomic.Bool
}

// NewView returns an empty view: every org on the defaults until Follow
// reads the bucket.
func NewView() *View { return &View{orgs: map[string]matrix.Settings{}} }

// Get returns the org's settings (the defaults for an org never changed).
// The result shares nothing with the view.
func (v *View) Get(org string) matrix.Settings {
	v.mu.RLock()
	st, ok := v.orgs[org]
	v.mu.RUnlock()
	if !ok {
		return matrix.Settings{Org: org}
	}
	return st.Clone()
}

// Set records st unless the view holds a newer version.
func (v *View) Set(st matrix.Settings) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if cur, ok := v.orgs[st.Org]; ok && cur.Version > st.Version {
		return
	}
	v.orgs[st.Org] = st.Clone()
}

func (v *View) forget(org string, rev uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if cur, ok := v.orgs[org]; ok && cur.Version > rev {
		return
	}
	delete(v.orgs, org)
}

// Synced reports whether the bucket's values present at start are in.
func (v *View) Synced() bool { return v.synced.Load() }

// Follow watches kv into v until ctx ends, starting over after retry when
// the watch breaks.
func (v *View) Follow(ctx context.Context, kv jetstream.KeyValue, retry time.Duration, log *slog.Logger) error {
	return bus.FollowKeyValue(ctx, kv, retry, log, "signals settings",
		func(e jetstream.KeyValueEntry) { v.apply(ctx, e, log) }, func() { v.synced.Store(true) })
}

func (v *View) apply(ctx context.Context, e jetstream.KeyValueEntry, log *slog.Logger) {
	if e.Operation() != jetstream.KeyValuePut {
		v.forget(e.Key(), e.Revision())
		return
	}
	st, err := Decode(e.Value())
	if err != nil || st.Org != e.Key() {
		// Keep the org on what this replica had: the stored value is
		// refused loudly rather than guessed at.
		log.ErrorContext(ctx, "unusable signals settings in the bucket", "key", e.Key(), "revision", e.Revision(), "err", err)
		return
	}
	st.Version = e.Revision()
	v.Set(st)
}
