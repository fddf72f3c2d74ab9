package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/bus"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

// TombstoneTTL is how long a delete's tombstone is kept in memory after it
// was applied (in the stream, tombstones are kept for ever: see the
// package's imported batches; those written before batches existed expire
// after it there too). A tombstone keeps an older upsert of a deleted
// record out; once applied, such an upsert can only come from an event
// still in the CRM stream (kept 7 days) or a re-run of an old import, so
// a month covers every redelivery with room to spare, and a rebuild
// replays the stream's tombstones, which keep out any batch it replays.
const TombstoneTTL = 30 * 24 * time.Hour

// SchemaSubject is where a module's schema with that hash lives: a
// sixth token, so it never meets a record's five-token subject.
func SchemaSubject(org, module, hash string) string {
	return recordsRoot + "." + Token(org) + "." + Token(module) + ".schema." + hash
}

// SchemaHash is the hash a schema is stored under: its deterministic
// encoding's SHA-256, 128 bits in hex.
func SchemaHash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:16])
}

// EncodeSchema returns a schema's deterministic encoding and its hash.
func EncodeSchema(s *crmv1.ModuleSchema) ([]byte, string, error) {
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(s)
	if err != nil {
		return nil, "", fmt.Errorf("snapshot: encoding the schema of %s: %w", s.GetModule(), err)
	}
	return data, SchemaHash(data), nil
}

// PutSchema stores a schema's encoding (from [EncodeSchema]) under its
// hash unless it is there already. It is written once and never again, so
// it always precedes, in the stream, the record snapshots that name it.
func (w *Writer) PutSchema(ctx context.Context, org, module, hash string, data []byte) error {
	subject := SchemaSubject(org, module, hash)
	m := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	m.Header.Set(jetstream.MsgIDHeader, "schema/"+org+"/"+module+"/"+hash)
	m.Header.Set(bus.HeaderType, TypeSchema)
	_, err := w.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(0), jetstream.WithExpectStream(w.name))
	if err != nil && !wrongLast(err) {
		return fmt.Errorf("snapshot: writing %s: %w", subject, err)
	}
	return nil
}

// TypeSchema is the Crmslack-Type of a schema snapshot.
var TypeSchema = string((&crmv1.ModuleSchema{}).ProtoReflect().Descriptor().FullName())

// ErrNoSchema: a record snapshot names a schema the stream does not hold.
var ErrNoSchema = errors.New("snapshot: no such schema")

// Schema reads the schema stored under hash, for a record snapshot whose
// schema was not seen before it.
func (w *Writer) Schema(ctx context.Context, org, module, hash string) (*crmv1.ModuleSchema, error) {
	subject := SchemaSubject(org, module, hash)
	m, err := w.stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrNoSchema, subject)
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot: reading %s: %w", subject, err)
	}
	s := &crmv1.ModuleSchema{}
	if err := proto.Unmarshal(m.Data, s); err != nil {
		return nil, fmt.Errorf("snapshot: decoding %s: %w", subject, err)
	}
	return s, nil
}

// SchemaHashOf returns the hash of a schema snapshot's subject; ok is
// false for any other subject.
func SchemaHashOf(subject string) (hash string, ok bool) {
	parts := strings.Split(subject, ".")
	if len(parts) != 6 || parts[0]+"."+parts[1] != recordsRoot || parts[4] != "schema" {
		return "", false
	}
	return parts[5], true
}

// ImportSubject is where an imported batch of a module lives, by its event
// id: a sixth token, as a schema's, so it never meets a record's subject.
func ImportSubject(org, module, eventID string) string {
	return recordsRoot + "." + Token(org) + "." + Token(module) + ".import." + Token(eventID)
}

// PutImport stores an imported batch (an encoded crm.v1.RecordsImported
// without its schema, which hash names) under its event id unless it is
// there already, and reports whether it wrote. A redelivered batch, or the
// same rows imported again, has the same event id and writes nothing.
func (w *Writer) PutImport(ctx context.Context, org, module, eventID, hash string, data []byte) (bool, error) {
	subject := ImportSubject(org, module, eventID)
	m := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
	m.Header.Set(jetstream.MsgIDHeader, "import/"+org+"/"+module+"/"+eventID)
	m.Header.Set(bus.HeaderType, TypeImported)
	m.Header.Set(HeaderSchema, hash)
	ack, err := w.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(0), jetstream.WithExpectStream(w.name))
	switch {
	case wrongLast(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("snapshot: writing %s: %w", subject, err)
	}
	return !ack.Duplicate, nil
}

// TypeImported is the Crmslack-Type of an imported batch.
var TypeImported = string((&crmv1.RecordsImported{}).ProtoReflect().Descriptor().FullName())
