// Package snapshot keeps the query service's durable state in JetStream:
// the last applied event of every record and every CRM user, in streams
// that keep one message per subject (a key-value store by another name).
//
// Streams (declared here, not in libs/topology: only the query service
// reads or writes them, and their subjects are no event contract):
//
//	QUERY_RECORDS  query.records.<org>.<module>.<record>   last RecordUpserted (without its schema), or RecordDeleted as a tombstone
//	               query.records.<org>.<module>.schema.<hash>  a ModuleSchema those upserts name by hash
//	               query.records.<org>.<module>.import.<event>  an imported batch, RecordsImported (without its schema)
//	QUERY_USERS    query.users.<org>.<user>                last CrmUserUpserted, or CrmUserDeactivated
//
// Each message is the event itself (protobuf, type in Crmslack-Type), with
// its version in Crmslack-Version, so replaying a stream is re-applying the
// events that made the state, and deletes survive a restart as tombstones.
// A record upsert is
// stored without its module's schema, which every CRM event carries and
// which is the same for a whole module: the schema is stored once, under
// its hash (Crmslack-Schema), so a snapshot is the size of its record and
// a rebuild decodes each schema once, not once per record.
//
// # Writing: compare-and-set by version
//
// [Writer.Put] reads the subject's last message (a direct get), returns
// without writing when it holds the same version or a newer one, and
// otherwise publishes with Nats-Expected-Last-Subject-Sequence set to what
// it read; a concurrent writer makes that fail, and Put reads again. So the
// stream only ever moves forward per subject, whatever order the events
// arrive in and however many replicas write. The Nats-Msg-Id is
// org/module/id/version (org/id/version for users), so a re-published
// snapshot inside the duplicate window is dropped before the check.
//
// # Imported batches: one message for hundreds of records
//
// A backfill's batch is stored whole, as one message ([Writer.PutImport]),
// not as a snapshot per record: the bus's per-message costs (storing,
// acknowledging, delivering to every replica, replaying) are then paid per
// batch. Its records are not compared with what the stream holds: a
// reader applies each by version, as it applies a record's own snapshot,
// so whichever of a batch and a record's own snapshot holds the higher
// version wins, in any order. A batch is never replaced, so it can hold a
// record older than the record's own snapshot, or than its tombstone:
// that is why tombstones are kept for ever (a version-1 batch outlives any
// horizon), where those written before batches existed expire after
// TombstoneTTL.
//
// # Reading: replay, then follow
//
// [Follow] starts an ordered consumer with DeliverLastPerSubject: it
// delivers the last message of every subject, then every new message, and
// reports when it has caught up with the stream as it was at the start.
package snapshot

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/topology"
)

// Stream names and subject roots.
const (
	StreamRecords = "QUERY_RECORDS"
	StreamUsers   = "QUERY_USERS"
	recordsRoot   = "query.records"
	usersRoot     = "query.users"
)

// HeaderVersion carries the snapshot's version, compared before writing.
const HeaderVersion = "Crmslack-Version"

// HeaderSchema names the schema snapshot of a record snapshot stored
// without its schema (see [Writer.PutSchema]).
const HeaderSchema = "Crmslack-Schema"

// maxCASAttempts bounds Put's read-compare-write loop. Each retry means
// another writer stored a newer message for the same subject meanwhile;
// more than a handful in a row means something else is wrong.
const maxCASAttempts = 8

// StreamConfigs returns both streams. One message per subject, kept for
// ever (the CRM stream keeps 7 days; these are what outlives it); direct
// gets on, since every write starts with one; the duplicate window of every
// stream of the project.
func StreamConfigs(replicas int, storage jetstream.StorageType) []jetstream.StreamConfig {
	if replicas < 1 {
		replicas = 1
	}
	mk := func(name, root, desc string) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:              name,
			Description:       desc,
			Subjects:          []string{root + ".>"},
			Retention:         jetstream.LimitsPolicy,
			MaxMsgsPerSubject: 1,
			Discard:           jetstream.DiscardOld,
			Storage:           storage,
			Replicas:          replicas,
			Duplicates:        topology.DuplicateWindow,
			AllowDirect:       true,
			// Tombstones written before import chunks carry a TTL (see
			// TombstoneTTL); a stream's AllowMsgTTL cannot be turned off.
			AllowMsgTTL: true,
		}
	}
	return []jetstream.StreamConfig{
		mk(StreamRecords, recordsRoot, "query: last applied event of every CRM record (deletes as tombstones); rebuilt into memory at start-up"),
		mk(StreamUsers, usersRoot, "query: last applied event of every CRM user; rebuilt into memory at start-up"),
	}
}

// Token makes any id one subject token: ids that are valid tokens (and do
// not start with "~") stay as they are, readable; anything else becomes
// "~" and its unpadded base64url, so distinct ids never share a subject.
func Token(id string) string {
	if _, err := topology.Token(id); err == nil && !strings.HasPrefix(id, "~") && isPrintableASCII(id) {
		return id
	}
	return "~" + base64.RawURLEncoding.EncodeToString([]byte(id))
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// RecordSubject is where a record's snapshot lives.
func RecordSubject(org, module, id string) string {
	return recordsRoot + "." + Token(org) + "." + Token(module) + "." + Token(id)
}

// UserSubject is where a CRM user's snapshot lives.
func UserSubject(org, id string) string {
	return usersRoot + "." + Token(org) + "." + Token(id)
}

// RecordMsgID and UserMsgID are the Nats-Msg-Id of a snapshot.
func RecordMsgID(org, module, id string, version int64) string {
	return org + "/" + module + "/" + id + "/" + strconv.FormatInt(version, 10)
}

// UserMsgID is the Nats-Msg-Id of a user snapshot.
func UserMsgID(org, id string, version int64) string {
	return org + "/" + id + "/" + strconv.FormatInt(version, 10)
}

// Writer writes snapshots to one stream.
type Writer struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	name   string
}

// NewWriter binds a writer to the stream, which must exist with
// AllowDirect (see [StreamConfigs]).
func NewWriter(ctx context.Context, js jetstream.JetStream, stream string) (*Writer, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("snapshot: looking up stream %s: %w", stream, err)
	}
	return &Writer{js: js, stream: s, name: stream}, nil
}

// PutOption adds to what [Writer.Put] writes.
type PutOption func(*putOptions)

type putOptions struct {
	schema string
}

// WithSchema names, in the Crmslack-Schema header, the schema snapshot
// (see [Writer.PutSchema]) the event was stripped of.
func WithSchema(hash string) PutOption { return func(o *putOptions) { o.schema = hash } }

// Put stores ev on subject unless the subject already holds version or a
// newer one. It reports whether it wrote.
//
// A version-1 write is first tried as the subject's first message, with no
// read: versions start at 1, so in a backfill that is what it almost always
// is, and it saves a round trip; if the subject holds anything, the write
// is refused and Put reads and compares as for any other version.
func (w *Writer) Put(ctx context.Context, subject, msgID string, version int64, ev proto.Message, opts ...PutOption) (bool, error) {
	// Not deterministic: nothing compares snapshots' bytes (versions decide),
	// and sorting a record's map of fields for every write is a tenth of
	// the persister's CPU in a backfill.
	data, err := proto.Marshal(ev)
	if err != nil {
		return false, fmt.Errorf("snapshot: encoding %s: %w", subject, err)
	}
	var o putOptions
	for _, opt := range opts {
		opt(&o)
	}
	p := prepared{subject: subject, msgID: msgID, typ: string(ev.ProtoReflect().Descriptor().FullName()), version: version, data: data, o: o}
	return w.put(ctx, p, version == 1)
}

// prepared is a snapshot encoded, ready to be published.
type prepared struct {
	subject, msgID, typ string
	version             int64
	data                []byte
	o                   putOptions
}

func (p prepared) msg() *nats.Msg {
	m := &nats.Msg{Subject: p.subject, Data: p.data, Header: nats.Header{}}
	if p.msgID != "" {
		m.Header.Set(jetstream.MsgIDHeader, p.msgID)
	}
	m.Header.Set(bus.HeaderType, p.typ)
	m.Header.Set(HeaderVersion, strconv.FormatInt(p.version, 10))
	if p.o.schema != "" {
		m.Header.Set(HeaderSchema, p.o.schema)
	}
	return m
}

// opts are the publish options expecting seq as the subject's last
// sequence (0: no message on it).
func (p prepared) opts(stream string, seq uint64) []jetstream.PublishOpt {
	return []jetstream.PublishOpt{jetstream.WithExpectLastSequencePerSubject(seq), jetstream.WithExpectStream(stream)}
}

// put is Put's read-compare-write loop; blind tries the first write as
// the subject's first message without reading.
func (w *Writer) put(ctx context.Context, p prepared, blind bool) (bool, error) {
	for range maxCASAttempts {
		var expect uint64
		if !blind {
			last, err := w.stream.GetLastMsgForSubject(ctx, p.subject)
			switch {
			case errors.Is(err, jetstream.ErrMsgNotFound):
				// Nothing stored: expect sequence 0, "no message on the subject".
			case err != nil:
				return false, fmt.Errorf("snapshot: reading %s: %w", p.subject, err)
			default:
				if v, perr := strconv.ParseInt(last.Header.Get(HeaderVersion), 10, 64); perr == nil && v >= p.version {
					return false, nil
				}
				expect = last.Sequence
			}
		}
		blind = false
		ack, err := w.js.PublishMsg(ctx, p.msg(), p.opts(w.name, expect)...)
		if err == nil {
			return !ack.Duplicate, nil
		}
		if wrongLast(err) {
			continue // another writer got there first: read again and compare
		}
		return false, fmt.Errorf("snapshot: writing %s: %w", p.subject, err)
	}
	return false, fmt.Errorf("snapshot: writing %s: still contended after %d attempts", p.subject, maxCASAttempts)
}

// KeepForever rewrites the message at seq, the last on its subject, without
// its Nats-TTL, so that it stays: a tombstone written with a TTL by an
// earlier build would otherwise expire and let an imported batch (kept for
// ever) bring its record back at a rebuild. It reports false, writing
// nothing, when the subject has moved on since seq.
func (w *Writer) KeepForever(ctx context.Context, subject string, seq uint64) (bool, error) {
	raw, err := w.stream.GetMsg(ctx, seq)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return false, nil // expired, or replaced, meanwhile
	case err != nil:
		return false, fmt.Errorf("snapshot: reading %s seq %d: %w", subject, seq, err)
	case raw.Subject != subject:
		return false, fmt.Errorf("snapshot: seq %d is on %s, not %s", seq, raw.Subject, subject)
	}
	m := &nats.Msg{Subject: subject, Data: raw.Data, Header: nats.Header{}}
	for k, v := range raw.Header {
		// Not the TTL; nor the message id, which the stream would drop as
		// the original's duplicate within its window.
		if k != jetstream.MsgTTLHeader && k != jetstream.MsgIDHeader {
			m.Header[k] = v
		}
	}
	if _, err := w.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(seq), jetstream.WithExpectStream(w.name)); err != nil {
		if wrongLast(err) {
			return false, nil
		}
		return false, fmt.Errorf("snapshot: rewriting %s: %w", subject, err)
	}
	return true, nil
}

func wrongLast(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// Msg is one snapshot as [Follow] delivers it.
type Msg struct {
	Subject string
	// Type is the protobuf full name of Data.
	Type string
	Data []byte
	// Schema is the Crmslack-Schema header: the hash of the schema snapshot
	// a record snapshot was stripped of, "" when it carries its own.
	Schema string
	// Seq is the stream sequence.
	Seq uint64
	// Expires is set when the message carries a Nats-TTL: a tombstone
	// written before tombstones were kept for ever (see [Writer.KeepForever]).
	Expires bool
}

// Following is a running [Follow] or [FollowParallel].
type Following struct {
	cc       jetstream.ConsumeContext
	target   uint64 // the stream's last sequence when following started
	total    uint64 // and how many messages it held
	caughtUp chan struct{}
	once     sync.Once
	applied  atomic.Uint64
	// stop ends a FollowParallel's stages after the consumer; nil for Follow.
	stop func(context.Context) error
}

// CaughtUp is closed once every message the stream held when Follow
// started has been applied.
func (f *Following) CaughtUp() <-chan struct{} { return f.caughtUp }

// Applied counts messages handed to apply.
func (f *Following) Applied() uint64 { return f.applied.Load() }

// Progress is the share of the messages the stream held when following
// started that have been applied, 0 to 1 (1 for an empty stream); a
// rebuild's memory is extrapolated from it (package rebuildmem).
func (f *Following) Progress() float64 {
	if f.total == 0 {
		return 1
	}
	return min(float64(f.applied.Load())/float64(f.total), 1)
}

// done counts a message of sequence seq applied.
func (f *Following) done(seq uint64) {
	f.applied.Add(1)
	if seq >= f.target {
		f.once.Do(func() { close(f.caughtUp) })
	}
}

// Stop stops following and waits (bounded by ctx) for the consumer to close
// and, for FollowParallel, for its stages to end.
func (f *Following) Stop(ctx context.Context) error {
	f.cc.Stop()
	select {
	case <-f.cc.Closed():
	case <-ctx.Done():
		return fmt.Errorf("snapshot: stopping: %w", ctx.Err())
	}
	if f.stop != nil {
		return f.stop(ctx)
	}
	return nil
}

// Follow replays the last message of every subject of the stream, then
// every new one, calling apply for each in stream order on one goroutine.
// An ordered consumer (ephemeral, in memory on the server, no acks) is
// right here: each replica needs every message, so there is no work to
// share, nothing to acknowledge, and after a reconnect it resumes from the
// last sequence it saw by itself.
func Follow(ctx context.Context, js jetstream.JetStream, stream string, log *slog.Logger, apply func(Msg)) (*Following, error) {
	f := &Following{}
	err := consume(ctx, js, stream, log, f, func(m jetstream.Msg) {
		if msg, _, ok := toMsg(m, stream, log); ok {
			apply(msg)
			f.done(msg.Seq)
		}
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// toMsg reads a delivered message, with how many the consumer has still
// to deliver after it; false (logged) if it has no metadata.
func toMsg(m jetstream.Msg, stream string, log *slog.Logger) (Msg, uint64, bool) {
	md, err := m.Metadata()
	if err != nil {
		log.Warn("snapshot without metadata", "stream", stream, "subject", m.Subject(), "err", err)
		return Msg{}, 0, false
	}
	h := m.Headers()
	return Msg{Subject: m.Subject(), Type: h.Get(bus.HeaderType), Data: m.Data(), Schema: h.Get(HeaderSchema), Seq: md.Sequence.Stream,
		Expires: h.Get(jetstream.MsgTTLHeader) != ""}, md.NumPending, true
}

// pullBytes bounds what a consumer buffers ahead of apply: a message count
// would let a thousand imported batches (up to a MiB each) pile up.
const pullBytes = 4 << 20

// consume starts f's ordered consumer on stream, calling handle for each
// message on one goroutine.
func consume(ctx context.Context, js jetstream.JetStream, stream string, log *slog.Logger, f *Following, handle func(jetstream.Msg)) error {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("snapshot: looking up stream %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("snapshot: stream %s info: %w", stream, err)
	}
	f.target, f.total = info.State.LastSeq, info.State.Msgs
	if info.State.Msgs == 0 {
		f.target = 0
	}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy,
		// The server removes an ordered consumer's ephemeral a while after
		// its client is gone.
		// No NamePrefix: the default is unique per consumer, and two
		// replicas (or a restarted one) must never share a name.
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return fmt.Errorf("snapshot: ordered consumer on %s: %w", stream, err)
	}
	f.caughtUp = make(chan struct{})
	if f.target == 0 {
		f.once.Do(func() { close(f.caughtUp) })
	}
	cc, err := cons.Consume(handle, jetstream.PullMaxBytes(pullBytes), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		log.Warn("following snapshots", "stream", stream, "err", err)
	}))
	if err != nil {
		return fmt.Errorf("snapshot: consuming %s: %w", stream, err)
	}
	f.cc = cc
	return nil
}
