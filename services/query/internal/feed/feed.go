// Package feed moves CRM events into the query service's memory, in two
// steps with one durable hand-off between them:
//
//  1. The persister: durable consumers on the CRM stream, shared by every
//     replica (each event is handled by one of them), write each record and
//     user event to its snapshot subject with compare-and-set by version
//     (package snapshot). An event is acknowledged only once its snapshot is
//     stored, or found already superseded, so the snapshot streams hold the
//     effect of every acknowledged event.
//  2. The applier: every replica follows the snapshot streams with its own
//     ordered consumer (replay of the last message per subject, then every
//     new one) and applies each snapshot to its in-memory projection and CRM
//     user directory.
//
// So the memory of every replica is exactly a fold of durable state: a
// restarted replica rebuilds it by replaying the snapshot streams (deletes
// included, as tombstones), with nothing to reconcile and no window where
// an event was consumed but not persisted. Versions make every step
// idempotent and order-free: duplicates, redeliveries and out-of-order
// events change nothing they should not, at both steps.
//
// Why replicas do not each read the CRM stream directly: the CRM stream
// keeps 7 days, so a restarted replica would need a start position that
// covers every event not yet persisted; with several writers of one
// last-per-subject stream, a lagging writer could also overwrite a newer
// snapshot with an older one. Following the snapshot stream needs no start
// position (DeliverLastPerSubject is the rebuild) and makes the persister
// the only writer, guarded by compare-and-set. The cost is one more hop
// (a direct get and a publish, well under a millisecond).
package feed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	"github.com/crmslack/crmslack/services/query/internal/crmusers"
	"github.com/crmslack/crmslack/services/query/internal/projection"
	"github.com/crmslack/crmslack/services/query/internal/snapshot"
)

// Durable consumer names on the CRM stream. They are a contract: renaming
// one replays the whole CRM stream into the snapshot streams (harmless,
// since writes compare versions, but slow).
const (
	DurableRecordsUpserted = "query-records-upserted"
	DurableRecordsDeleted  = "query-records-deleted"
	DurableRecordsImported = "query-records-imported"
	DurableUsersUpserted   = "query-users-upserted"
	DurableUsersDeactivate = "query-users-deactivated"
)

// Specs returns the persister's consumers. Settings, each chosen:
//   - the default AckWait and handler time (27 s): a write is two round
//     trips to JetStream; the handler time only matters when JetStream
//     itself is struggling.
//   - MaxDeliver 20 with the default back-off (about an hour): a JetStream
//     hiccup heals by itself; an event that fails that long is
//     dead-lettered rather than retried for ever.
//   - Concurrency 64 for record upserts: a backfill is a million of them,
//     each write is a round trip or two that waits on JetStream rather than
//     on a core, and writes are compare-and-set, so order does not matter.
//     4 for imported batches: each is one write of hundreds of records, so
//     a few at once keep the stream busy. 2 for the rest.
//   - MaxAckPending 4096 for record upserts, 16 for imported batches (1000,
//     the default, for the rest) bounds events in flight per durable across
//     replicas: enough to keep the handlers busy while acks travel back; a
//     batch is hundreds of records, so 16 is thousands.
//
// Duplicates: the CRM stream's 15-minute window drops a re-published
// event; a redelivered one finds its version already stored and is acked.
func Specs() []bus.ConsumerSpec {
	spec := func(durable, filter string, concurrency, maxAckPending int) bus.ConsumerSpec {
		return bus.ConsumerSpec{
			Stream:         topology.StreamCRM,
			Durable:        durable,
			FilterSubjects: []string{filter},
			MaxDeliver:     bus.DefaultMaxDeliver,
			BackOff:        bus.DefaultBackOff(),
			MaxAckPending:  maxAckPending,
			Concurrency:    concurrency,
		}
	}
	return []bus.ConsumerSpec{
		spec(DurableRecordsUpserted, topology.RecordUpserted("*", "*"), 64, 4096),
		spec(DurableRecordsDeleted, topology.RecordDeleted("*", "*"), 2, bus.DefaultMaxAckPending),
		spec(DurableRecordsImported, topology.RecordsImported("*", "*"), 4, 16),
		spec(DurableUsersUpserted, topology.CrmUser("*", "upserted"), 2, bus.DefaultMaxAckPending),
		spec(DurableUsersDeactivate, topology.CrmUser("*", "deactivated"), 2, bus.DefaultMaxAckPending),
	}
}

// Metrics of both steps.
type Metrics struct {
	written *prometheus.CounterVec
	applied *prometheus.CounterVec
}

// NewMetrics registers the feed's metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		written: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmslack_query_snapshot_writes_total",
			Help: "CRM events persisted to the snapshot streams, by stream and outcome (written, superseded).",
		}, []string{"stream", "outcome"}),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmslack_query_snapshots_applied_total",
			Help: "Snapshots applied to memory, by stream and outcome (applied, stale, invalid).",
		}, []string{"stream", "outcome"}),
	}
	for _, c := range []prometheus.Collector{m.written, m.applied} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering feed metrics: %w", err)
		}
	}
	return m, nil
}

// Persister writes CRM events to the snapshot streams.
type Persister struct {
	records, users *snapshot.Writer
	metrics        *Metrics
	// schemas holds the hash of every schema this persister has stored
	// (or found stored), by its encoding: each is written once.
	schemas sync.Map
}

// NewPersister returns a persister writing with the two writers.
func NewPersister(records, users *snapshot.Writer, m *Metrics) *Persister {
	return &Persister{records: records, users: users, metrics: m}
}

func (p *Persister) count(stream string, wrote bool) {
	outcome := "superseded"
	if wrote {
		outcome = "written"
	}
	p.metrics.written.WithLabelValues(stream, outcome).Inc()
}

// RecordUpserted persists an upsert.
func (p *Persister) RecordUpserted(ctx context.Context, ev *crmv1.RecordUpserted) error {
	org, rec := ev.GetEnvelope().GetOrgId(), ev.GetRecord()
	switch {
	case rec.GetId() == "" || rec.GetModule() == "":
		return bus.Permanent(fmt.Errorf("record upserted without module or id: %w", projection.ErrInvalidEvent))
	case ev.GetSchema().GetModule() != rec.GetModule():
		return bus.Permanent(fmt.Errorf("record %s/%s upserted with the schema of %q: %w", rec.GetModule(), rec.GetId(), ev.GetSchema().GetModule(), projection.ErrInvalidEvent))
	}
	hash, err := p.schema(ctx, org, ev.GetSchema())
	if err != nil {
		return err
	}
	// The snapshot without its schema, which is stored once under hash.
	stripped := &crmv1.RecordUpserted{Envelope: ev.GetEnvelope(), Record: rec}
	wrote, err := p.records.Put(ctx, snapshot.RecordSubject(org, rec.GetModule(), rec.GetId()),
		snapshot.RecordMsgID(org, rec.GetModule(), rec.GetId(), rec.GetVersion()), rec.GetVersion(), stripped, snapshot.WithSchema(hash))
	if err != nil {
		return err
	}
	p.count(snapshot.StreamRecords, wrote)
	return nil
}

// RecordsImported persists a batch of backfilled records as one snapshot
// (snapshot.Writer.PutImport): the batch without its schema, which is
// stored once under its hash. Each record is checked to be a well-formed
// record of the batch's module with an id (only its module, id and version
// are read, not its fields); a batch with any invalid record is refused
// whole, before anything is written, and dead-lettered with the first bad
// record named. Versions are compared when a replica applies the records,
// not here: a redelivered batch, or the same rows imported again, has the
// same event id and writes nothing.
func (p *Persister) RecordsImported(ctx context.Context, ev *crmv1.RecordsImported) error {
	org, module, eventID := ev.GetEnvelope().GetOrgId(), ev.GetSchema().GetModule(), ev.GetEnvelope().GetEventId()
	switch {
	case module == "":
		return bus.Permanent(fmt.Errorf("records imported without a schema: %w", projection.ErrInvalidEvent))
	case eventID == "":
		return bus.Permanent(fmt.Errorf("records imported without an event id: %w", projection.ErrInvalidEvent))
	}
	for i, rec := range ev.GetRecords() {
		k, err := keyOf(rec)
		switch {
		case err != nil:
			return bus.Permanent(fmt.Errorf("imported record %d of %d: %w: %w", i+1, len(ev.GetRecords()), err, projection.ErrInvalidEvent))
		case k.id == "":
			return bus.Permanent(fmt.Errorf("imported record %d of %d has no id: %w", i+1, len(ev.GetRecords()), projection.ErrInvalidEvent))
		case k.module != module:
			return bus.Permanent(fmt.Errorf("imported record %s is of module %q in a batch of %q: %w", k.id, k.module, module, projection.ErrInvalidEvent))
		}
	}
	hash, err := p.schema(ctx, org, ev.GetSchema())
	if err != nil {
		return err
	}
	data, err := proto.Marshal(&crmv1.RecordsImported{Envelope: ev.GetEnvelope(), Records: ev.GetRecords()})
	if err != nil {
		return bus.Permanent(fmt.Errorf("encoding the batch: %w", err))
	}
	wrote, err := p.records.PutImport(ctx, org, module, eventID, hash, data)
	if err != nil {
		return err
	}
	outcome := "superseded"
	if wrote {
		outcome = "written"
	}
	p.metrics.written.WithLabelValues(snapshot.StreamRecords, outcome).Add(float64(len(ev.GetRecords())))
	return nil
}

// recordKey is what the persister checks of an encoded crm.v1.Record.
type recordKey struct {
	module, id string
	version    int64
}

// Field numbers of crm.v1.Record (records.proto).
const recordModule, recordID, recordVersion = 1, 2, 3

// keyOf reads a Record's module, id and version from its encoding (the
// last of each, as decoding would), checking that the whole of it is
// well-formed protobuf without decoding its fields.
func keyOf(b []byte) (recordKey, error) {
	var k recordKey
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return k, fmt.Errorf("not a record: %w", protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case (num == recordModule || num == recordID) && typ == protowire.BytesType:
			v, n := protowire.ConsumeString(b)
			if n < 0 {
				return k, fmt.Errorf("not a record: %w", protowire.ParseError(n))
			}
			if !utf8.ValidString(v) {
				return k, errors.New("a record's module or id is not UTF-8")
			}
			if num == recordModule {
				k.module = v
			} else {
				k.id = v
			}
			b = b[n:]
		case num == recordVersion && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return k, fmt.Errorf("not a record: %w", protowire.ParseError(n))
			}
			k.version = int64(v)
			b = b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return k, fmt.Errorf("not a record: %w", protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	return k, nil
}

// schema stores the schema unless this persister did already, and returns
// its hash.
func (p *Persister) schema(ctx context.Context, org string, s *crmv1.ModuleSchema) (string, error) {
	data, hash, err := snapshot.EncodeSchema(s)
	if err != nil {
		return "", bus.Permanent(err)
	}
	key := org + "\x00" + hash
	if _, ok := p.schemas.Load(key); ok {
		return hash, nil
	}
	if err := p.records.PutSchema(ctx, org, s.GetModule(), hash, data); err != nil {
		return "", err
	}
	p.schemas.Store(key, struct{}{})
	return hash, nil
}

// RecordDeleted persists a delete as the record's tombstone, kept for
// ever: an imported batch holding an older version of the record is never
// replaced, and would bring it back on a rebuild once the tombstone had
// gone.
func (p *Persister) RecordDeleted(ctx context.Context, ev *crmv1.RecordDeleted) error {
	org, module, id := ev.GetEnvelope().GetOrgId(), ev.GetModule(), ev.GetRecordId()
	if module == "" || id == "" {
		return bus.Permanent(fmt.Errorf("record deleted without module or id: %w", projection.ErrInvalidEvent))
	}
	wrote, err := p.records.Put(ctx, snapshot.RecordSubject(org, module, id), snapshot.RecordMsgID(org, module, id, ev.GetVersion()), ev.GetVersion(), ev)
	if err != nil {
		return err
	}
	p.count(snapshot.StreamRecords, wrote)
	return nil
}

// UserUpserted persists a CRM user.
func (p *Persister) UserUpserted(ctx context.Context, ev *crmv1.CrmUserUpserted) error {
	org, u := ev.GetEnvelope().GetOrgId(), ev.GetUser()
	if u.GetId() == "" {
		return bus.Permanent(fmt.Errorf("user upserted without id: %w", crmusers.ErrInvalidEvent))
	}
	wrote, err := p.users.Put(ctx, snapshot.UserSubject(org, u.GetId()), snapshot.UserMsgID(org, u.GetId(), u.GetVersion()), u.GetVersion(), ev)
	if err != nil {
		return err
	}
	p.count(snapshot.StreamUsers, wrote)
	return nil
}

// UserDeactivated persists a deactivation.
func (p *Persister) UserDeactivated(ctx context.Context, ev *crmv1.CrmUserDeactivated) error {
	org, id := ev.GetEnvelope().GetOrgId(), ev.GetUserId()
	if id == "" {
		return bus.Permanent(fmt.Errorf("user deactivated without id: %w", crmusers.ErrInvalidEvent))
	}
	wrote, err := p.users.Put(ctx, snapshot.UserSubject(org, id), snapshot.UserMsgID(org, id, ev.GetVersion()), ev.GetVersion(), ev)
	if err != nil {
		return err
	}
	p.count(snapshot.StreamUsers, wrote)
	return nil
}

// Subscribe starts the persister's consumers; on error, those already
// started are stopped.
func Subscribe(ctx context.Context, b *bus.Bus, p *Persister) ([]*bus.Subscription, error) {
	specs := Specs()
	var subs []*bus.Subscription
	add := func(s *bus.Subscription, err error) error {
		if err != nil {
			return err
		}
		subs = append(subs, s)
		return nil
	}
	err := errors.Join(
		add(bus.Subscribe(ctx, b, specs[0], p.RecordUpserted)),
		add(bus.Subscribe(ctx, b, specs[1], p.RecordDeleted)),
		add(bus.Subscribe(ctx, b, specs[2], p.RecordsImported)),
		add(bus.Subscribe(ctx, b, specs[3], p.UserUpserted)),
		add(bus.Subscribe(ctx, b, specs[4], p.UserDeactivated)),
	)
	if err != nil {
		for _, s := range subs {
			_ = s.Stop(ctx)
		}
		return nil, err
	}
	return subs, nil
}

// SchemaReader reads a stored schema by its hash (snapshot.Writer does).
type SchemaReader interface {
	Schema(ctx context.Context, org, module, hash string) (*crmv1.ModuleSchema, error)
}

// Applier applies snapshots to memory. Record (or ApplyRecord) and User
// are each called from one goroutine (a snapshot.Follow's, or
// FollowParallel's apply stage); PrepareRecord from any.
type Applier struct {
	Records *projection.Store
	Users   *crmusers.Directory
	Log     *slog.Logger
	Metrics *Metrics
	// Schemas reads a schema a record snapshot names before the schema's
	// own snapshot was seen (it always comes first in the stream, so only
	// if it was missed).
	Schemas SchemaReader

	// schemas are the schemas seen, by hash, decoded once and shared by
	// every record of their module.
	schemas map[string]*crmv1.ModuleSchema
	// compacted is when tombstones were last compacted.
	compacted time.Time

	// expiring are the tombstones applied that carry a TTL (written by an
	// earlier build), for KeepTombstones.
	expiringMu sync.Mutex
	expiring   []expiringTombstone
}

type expiringTombstone struct {
	subject string
	seq     uint64
}

// KeepTombstones rewrites without their TTL the tombstones with one that
// were applied so far (see snapshot.Writer.KeepForever), and reports how
// many it rewrote. Every replica may run it: a rewrite expects the
// tombstone still last on its subject, so the second finds it moved on.
func (a *Applier) KeepTombstones(ctx context.Context, w *snapshot.Writer) (int, error) {
	a.expiringMu.Lock()
	todo := a.expiring
	a.expiring = nil
	a.expiringMu.Unlock()
	kept := 0
	for _, t := range todo {
		ok, err := w.KeepForever(ctx, t.subject, t.seq)
		if err != nil {
			return kept, err
		}
		if ok {
			kept++
		}
	}
	return kept, nil
}

// compactEvery is how often memory's tombstones older than
// snapshot.TombstoneTTL are dropped (the stream keeps its own, which a
// rebuild replays).
const compactEvery = time.Hour

func (a *Applier) outcome(stream string, changed bool, err error, m snapshot.Msg) {
	switch {
	case err != nil:
		// Cannot happen for snapshots the persister wrote (it validates);
		// a hand-made message is skipped, not retried.
		a.Log.Warn("snapshot not applied", "stream", stream, "subject", m.Subject, "seq", m.Seq, "err", err)
		a.Metrics.applied.WithLabelValues(stream, "invalid").Inc()
	case changed:
		a.Metrics.applied.WithLabelValues(stream, "applied").Inc()
	default:
		a.Metrics.applied.WithLabelValues(stream, "stale").Inc()
	}
}

func decode[T proto.Message](m snapshot.Msg, ev T) (T, error) {
	if err := proto.Unmarshal(m.Data, ev); err != nil {
		return ev, fmt.Errorf("decoding %s: %w", m.Type, err)
	}
	return ev, nil
}

// Type names of the snapshots, as in their Crmslack-Type header.
var (
	typeRecordUpserted  = string((&crmv1.RecordUpserted{}).ProtoReflect().Descriptor().FullName())
	typeRecordDeleted   = string((&crmv1.RecordDeleted{}).ProtoReflect().Descriptor().FullName())
	typeUserUpserted    = string((&crmv1.CrmUserUpserted{}).ProtoReflect().Descriptor().FullName())
	typeUserDeactivated = string((&crmv1.CrmUserDeactivated{}).ProtoReflect().Descriptor().FullName())
)

// Record applies a QUERY_RECORDS snapshot: [Applier.ApplyRecord] of
// [Applier.PrepareRecord].
func (a *Applier) Record(m snapshot.Msg) { a.ApplyRecord(m, a.PrepareRecord(m)) }

// Prepared is a QUERY_RECORDS snapshot decoded by [Applier.PrepareRecord]:
// one of its fields is set.
type Prepared struct {
	err error
	// An upsert stored without its schema, as the persister stores them:
	// its envelope decoded for the org, its record parsed.
	org    string
	parsed *projection.Parsed
	// An imported batch stored without its schema: its envelope decoded
	// for the org, each of its records parsed (nil: not a record).
	batch []*projection.Parsed
	// An upsert stored any other way, decoded whole.
	upserted *crmv1.RecordUpserted
	deleted  *crmv1.RecordDeleted
	// A schema and the hash its records name it by.
	schema     *crmv1.ModuleSchema
	schemaHash string
}

// PrepareRecord decodes a QUERY_RECORDS snapshot for ApplyRecord. It reads
// nothing ApplyRecord writes, so it may run on any goroutine, for many
// snapshots at once (snapshot.FollowParallel).
func (a *Applier) PrepareRecord(m snapshot.Msg) Prepared {
	switch m.Type {
	case typeRecordUpserted:
		return prepareUpserted(m)
	case snapshot.TypeImported:
		return prepareImported(m)
	case snapshot.TypeSchema:
		hash, ok := snapshot.SchemaHashOf(m.Subject)
		if !ok {
			return Prepared{err: fmt.Errorf("a schema on subject %s", m.Subject)}
		}
		s, err := decode(m, &crmv1.ModuleSchema{})
		return Prepared{schema: s, schemaHash: hash, err: err}
	case typeRecordDeleted:
		ev, err := decode(m, &crmv1.RecordDeleted{})
		return Prepared{deleted: ev, err: err}
	default:
		return Prepared{err: fmt.Errorf("unexpected type %q", m.Type)}
	}
}

// prepareUpserted decodes a RecordUpserted snapshot. One stored without
// its schema (as the persister stores them) is not decoded: its envelope
// is, for the org, and its record is parsed by the projection from its
// encoding.
func prepareUpserted(m snapshot.Msg) Prepared {
	env, rec, ok := splitUpserted(m.Data)
	if !ok || m.Schema == "" {
		ev, err := decode(m, &crmv1.RecordUpserted{})
		return Prepared{upserted: ev, err: err}
	}
	envelope := &commonv1.Envelope{}
	if err := proto.Unmarshal(env, envelope); err != nil {
		return Prepared{err: fmt.Errorf("decoding the envelope of %s: %w", m.Type, err)}
	}
	p, err := projection.ParseEncoded(rec)
	if err != nil {
		return Prepared{err: fmt.Errorf("decoding %s: %w", m.Type, err)}
	}
	return Prepared{org: envelope.GetOrgId(), parsed: p}
}

// prepareImported parses an imported batch's records from their
// encodings; one that is not a record is left nil (and counted invalid),
// the others still apply.
func prepareImported(m snapshot.Msg) Prepared {
	env, recs, ok := splitImported(m.Data)
	if !ok || m.Schema == "" {
		return Prepared{err: fmt.Errorf("an imported batch on %s not as the persister writes it", m.Subject)}
	}
	envelope := &commonv1.Envelope{}
	if err := proto.Unmarshal(env, envelope); err != nil {
		return Prepared{err: fmt.Errorf("decoding the envelope of %s: %w", m.Type, err)}
	}
	batch := make([]*projection.Parsed, len(recs))
	for i, rec := range recs {
		batch[i], _ = projection.ParseEncoded(rec)
	}
	return Prepared{org: envelope.GetOrgId(), batch: batch}
}

// ApplyRecord applies a snapshot PrepareRecord decoded. It is called from
// one goroutine, in stream order.
func (a *Applier) ApplyRecord(m snapshot.Msg, p Prepared) {
	if p.batch != nil {
		a.applyImported(m, p)
	} else {
		changed, err := a.applyRecord(m, p)
		a.outcome(snapshot.StreamRecords, changed, err, m)
	}
	if now := time.Now(); now.Sub(a.compacted) > compactEvery {
		if a.compacted.IsZero() { // at start: the replayed ones were stamped just now
			a.compacted = now
			return
		}
		a.compacted = now
		if n := a.Records.CompactTombstones(now.Add(-snapshot.TombstoneTTL)); n > 0 {
			a.Log.Info("tombstones compacted", "dropped", n, "kept", a.Records.Tombstones())
		}
	}
}

func (a *Applier) applyRecord(m snapshot.Msg, p Prepared) (bool, error) {
	switch {
	case p.err != nil:
		return false, p.err
	case p.parsed != nil:
		schema, err := a.schema(p.org, p.parsed.Module(), m.Schema)
		if err != nil {
			return false, err
		}
		return a.Records.ApplyParsed(p.org, schema, p.parsed)
	case p.upserted != nil:
		ev := p.upserted
		if m.Schema != "" {
			var err error
			if ev.Schema, err = a.schema(ev.GetEnvelope().GetOrgId(), ev.GetRecord().GetModule(), m.Schema); err != nil {
				return false, err
			}
		}
		return a.Records.ApplyUpserted(ev)
	case p.deleted != nil:
		if m.Expires {
			a.expiringMu.Lock()
			a.expiring = append(a.expiring, expiringTombstone{m.Subject, m.Seq})
			a.expiringMu.Unlock()
		}
		return a.Records.ApplyDeleted(p.deleted)
	case p.schema != nil:
		a.keepSchema(p.schemaHash, p.schema)
		return true, nil
	default:
		return false, fmt.Errorf("snapshot %s not prepared", m.Subject)
	}
}

// applyImported applies each record of an imported batch as its own
// snapshot would be: by version, each counted.
func (a *Applier) applyImported(m snapshot.Msg, p Prepared) {
	for i, parsed := range p.batch {
		if parsed == nil {
			a.outcome(snapshot.StreamRecords, false, fmt.Errorf("imported record %d of %d: %w", i+1, len(p.batch), projection.ErrInvalidEvent), m)
			continue
		}
		schema, err := a.schema(p.org, parsed.Module(), m.Schema)
		changed := false
		if err == nil {
			changed, err = a.Records.ApplyParsed(p.org, schema, parsed)
		}
		a.outcome(snapshot.StreamRecords, changed, err, m)
	}
}

// Field numbers of crm.v1.RecordsImported (records.proto).
const importedEnvelope, importedSchema, importedRecords = 1, 2, 3

// splitImported finds, in an encoded RecordsImported, its envelope's and
// its records' encodings; false when it holds a schema or two envelopes,
// or is not an encoding at all.
func splitImported(data []byte) (env []byte, recs [][]byte, ok bool) {
	ok = lengthDelimited(data, func(num protowire.Number, v []byte) bool {
		switch num {
		case importedEnvelope:
			if env != nil {
				return false
			}
			env = v
		case importedRecords:
			recs = append(recs, v)
		case importedSchema:
			return false
		}
		return true
	})
	return env, recs, ok && env != nil
}

// Field numbers of crm.v1.RecordUpserted (records.proto).
const upsertedEnvelope, upsertedRecord, upsertedSchema = 1, 2, 3

// splitUpserted finds, in an encoded RecordUpserted, its envelope's and
// its record's encodings; false when it holds a schema, or either of them
// twice (which decoding merges), or is not an encoding at all.
func splitUpserted(data []byte) (env, rec []byte, ok bool) {
	ok = lengthDelimited(data, func(num protowire.Number, v []byte) bool {
		switch num {
		case upsertedEnvelope:
			if env != nil {
				return false
			}
			env = v
		case upsertedRecord:
			if rec != nil {
				return false
			}
			rec = v
		case upsertedSchema:
			return false
		}
		return true
	})
	return env, rec, ok && env != nil && rec != nil
}

// lengthDelimited hands visit each length-delimited field of an encoding
// (its number and bytes), skipping the others; false when the encoding is
// malformed or visit returned false.
func lengthDelimited(data []byte, visit func(num protowire.Number, v []byte) bool) bool {
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return false
		}
		data = data[n:]
		if typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(data)
			if n < 0 || !visit(num, v) {
				return false
			}
			data = data[n:]
			continue
		}
		if n = protowire.ConsumeFieldValue(num, typ, data); n < 0 {
			return false
		}
		data = data[n:]
	}
	return true
}

// keepSchema remembers a schema for the records that name it by hash.
func (a *Applier) keepSchema(hash string, s *crmv1.ModuleSchema) {
	if a.schemas == nil {
		a.schemas = map[string]*crmv1.ModuleSchema{}
	}
	a.schemas[hash] = s
}

// schema returns the schema stored under hash, reading it if unseen.
func (a *Applier) schema(org, module, hash string) (*crmv1.ModuleSchema, error) {
	if s, ok := a.schemas[hash]; ok {
		return s, nil
	}
	if a.Schemas == nil {
		return nil, fmt.Errorf("schema %s not seen and no reader: %w", hash, snapshot.ErrNoSchema)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := a.Schemas.Schema(ctx, org, module, hash)
	if err != nil {
		return nil, err
	}
	a.keepSchema(hash, s)
	return s, nil
}

// User applies a QUERY_USERS snapshot.
func (a *Applier) User(m snapshot.Msg) {
	var changed bool
	var err error
	switch m.Type {
	case typeUserUpserted:
		var ev *crmv1.CrmUserUpserted
		if ev, err = decode(m, &crmv1.CrmUserUpserted{}); err == nil {
			changed, err = a.Users.ApplyUpserted(ev)
		}
	case typeUserDeactivated:
		var ev *crmv1.CrmUserDeactivated
		if ev, err = decode(m, &crmv1.CrmUserDeactivated{}); err == nil {
			changed, err = a.Users.ApplyDeactivated(ev)
		}
	default:
		err = fmt.Errorf("unexpected type %q", m.Type)
	}
	a.outcome(snapshot.StreamUsers, changed, err, m)
}
