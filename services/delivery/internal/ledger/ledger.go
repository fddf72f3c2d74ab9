// Package ledger is delivery's idempotency record: one entry per (org,
// idempotency key) in a JetStream key-value bucket, written around the Slack
// call that must happen at most once.
//
//   - Claim, before the call: a create-only write (KV Create) that fails when
//     the key exists, so two deliveries of one command can never both decide
//     to post.
//   - Update, after: compare-and-set on the claim's revision, recording the
//     result (channel, ts, file ids).
//   - Release, when the call definitely did not happen and the command
//     failed: the key is free for a later retry by the caller.
//
// An entry that is claimed but has no result after its claimant is gone
// means "the call may or may not have happened"; the caller resolves it
// (see the deliver package) instead of repeating the call blindly.
//
// Why JetStream KV and not MongoDB: the embedded FerretDB scans the whole
// collection on every read and update, which a per-message read-modify-write
// cannot afford; KV Create / Update are single appends to a stream, keyed
// lookups are direct gets, and entries expire with the bucket's TTL. The
// audit trail (channel + ts per command) is in MongoDB, written in batches
// from the outcome events.
package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/services/delivery/internal/deliver"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the key-value bucket of the ledger.
const Bucket = "delivery_ledger"

// The record's types are the core's (deliver's ledger port).
type (
	State  = deliver.LedgerState
	Record = deliver.LedgerRecord
	Entry  = deliver.LedgerEntry
)

// States of an entry.
const (
	Claimed    = deliver.StateClaimed
	Completing = deliver.StateCompleting
	Done       = deliver.StateDone
	Unknown    = deliver.StateUnknown
)

// Key is the bucket key of org's idempotency key (deliver.LedgerKey).
func Key(org, idempotencyKey string) string { return deliver.LedgerKey(org, idempotencyKey) }

// Config returns the bucket configuration. ttl bounds how long a key is
// remembered: it must exceed how long a command can be redelivered (the
// SLACK_OUT stream keeps commands 3 days).
func Config(ttl time.Duration, replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "delivery idempotency: one entry per (org, idempotency key), claimed before the Slack call",
		History:     1,
		TTL:         ttl,
		Replicas:    max(replicas, 1),
		Storage:     jetstream.FileStorage,
	}
}

// Ensure creates or updates the bucket.
func Ensure(ctx context.Context, js jetstream.JetStream, ttl time.Duration, replicas int) (jetstream.KeyValue, error) {
	kv, err := bus.BindKeyValue(ctx, js, Config(ttl, replicas))
	if err != nil {
		return nil, fmt.Errorf("ensuring bucket %s: %w", Bucket, err)
	}
	return kv, nil
}

// Ledger reads and writes entries.
type Ledger struct {
	kv jetstream.KeyValue
	js jetstream.JetStream
}

// New returns a ledger over kv, the bucket [Ensure] made on js.
func New(js jetstream.JetStream, kv jetstream.KeyValue) *Ledger { return &Ledger{kv: kv, js: js} }

// asyncAckTimeout bounds the wait for an UpdateAsync's ack.
const asyncAckTimeout = 10 * time.Second

// UpdateAsync is Update without waiting for the stream: the write is
// published at once (so many share a round trip), and wait returns the new
// revision, or ErrConflict when the entry moved on. It writes the bucket's
// stream subject directly ($KV.<bucket>.<key>, as KV Update does) with the
// same compare-and-set header.
func (l *Ledger) UpdateAsync(_ context.Context, key string, rec Record, revision uint64) (func() (uint64, error), error) {
	data, err := encode(&rec)
	if err != nil {
		return nil, err
	}
	m := &nats.Msg{Subject: "$KV." + Bucket + "." + key, Data: data, Header: nats.Header{
		jetstream.ExpectedLastSubjSeqHeader: []string{strconv.FormatUint(revision, 10)},
	}}
	f, err := l.js.PublishMsgAsync(m)
	if err != nil {
		return nil, fmt.Errorf("updating %s: %w", key, err)
	}
	failed := func(err error) (uint64, error) {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			return 0, fmt.Errorf("updating %s at revision %d: %w", key, revision, ErrConflict)
		}
		return 0, markUnavailable(fmt.Errorf("updating %s: %w", key, err))
	}
	return func() (uint64, error) {
		// The settler waits after the outcome's own ack, by when this one
		// is nearly always in: no timer for that case.
		select {
		case ack := <-f.Ok():
			return ack.Sequence, nil
		case err := <-f.Err():
			return failed(err)
		default:
		}
		t := time.NewTimer(asyncAckTimeout)
		defer t.Stop()
		select {
		case ack := <-f.Ok():
			return ack.Sequence, nil
		case err := <-f.Err():
			return failed(err)
		case <-t.C:
			return 0, markUnavailable(fmt.Errorf("updating %s: no ack within %s: %w", key, asyncAckTimeout, context.DeadlineExceeded))
		}
	}, nil
}

// ErrConflict is returned by Update and Release when the entry changed
// since it was read.
var ErrConflict = deliver.ErrLedgerConflict

// createOnly is the header of a claim's append: one map shared by every
// claim (a map per claim was a tenth of the ledger's allocations), read-only:
// PublishMsg without options writes no header.
var createOnly = nats.Header{jetstream.ExpectedLastSubjSeqHeader: []string{"0"}}

// Claim records rec under key if the key is free and returns it with
// created true; if the key is taken it returns the existing entry with
// created false.
func (l *Ledger) Claim(ctx context.Context, key string, rec Record) (Entry, bool, error) {
	data, err := encode(&rec)
	if err != nil {
		return Entry{}, false, err
	}
	// The usual case, a key never written, is one create-only append to
	// the bucket's stream (what KV Create sends first, without its key
	// check by regular expression: ledger keys are hex by construction).
	// Anything else (the key exists, or was released and left a delete
	// marker) goes through KV Create, which tells the two apart.
	m := &nats.Msg{Subject: "$KV." + Bucket + "." + key, Data: data, Header: createOnly}
	if ack, err := l.js.PublishMsg(ctx, m); err == nil {
		return Entry{LedgerRecord: rec, Revision: ack.Sequence}, true, nil
	}
	for range 3 {
		rev, err := l.kv.Create(ctx, key, data)
		if err == nil {
			return Entry{LedgerRecord: rec, Revision: rev}, true, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return Entry{}, false, markUnavailable(fmt.Errorf("claiming %s: %w", key, err))
		}
		e, err := l.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // released between the two calls: claim again
		}
		if err != nil {
			return Entry{}, false, err
		}
		return e, false, nil
	}
	return Entry{}, false, fmt.Errorf("claiming %s: the key keeps changing", key)
}

// Get reads key's entry; jetstream.ErrKeyNotFound when there is none.
func (l *Ledger) Get(ctx context.Context, key string) (Entry, error) {
	kve, err := l.kv.Get(ctx, key)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return Entry{}, err
		}
		return Entry{}, markUnavailable(fmt.Errorf("reading %s: %w", key, err))
	}
	var rec Record
	if err := json.Unmarshal(kve.Value(), &rec); err != nil {
		return Entry{}, fmt.Errorf("decoding ledger entry %s: %w", key, err)
	}
	return Entry{LedgerRecord: rec, Revision: kve.Revision()}, nil
}

// Update replaces the entry read at revision with rec and returns the new
// revision, or ErrConflict when the entry moved on.
func (l *Ledger) Update(ctx context.Context, key string, rec Record, revision uint64) (uint64, error) {
	data, err := encode(&rec)
	if err != nil {
		return 0, err
	}
	rev, err := l.kv.Update(ctx, key, data, revision)
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			return 0, fmt.Errorf("updating %s at revision %d: %w", key, revision, ErrConflict)
		}
		return 0, markUnavailable(fmt.Errorf("updating %s: %w", key, err))
	}
	return rev, nil
}

// Release deletes the entry read at revision, freeing the key.
func (l *Ledger) Release(ctx context.Context, key string, revision uint64) error {
	err := l.kv.Delete(ctx, key, jetstream.LastRevision(revision))
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("releasing %s at revision %d: %w", key, revision, ErrConflict)
		}
		return markUnavailable(fmt.Errorf("releasing %s: %w", key, err))
	}
	return nil
}

// markUnavailable marks err as deliver.ErrUnavailable when it says JetStream
// could not be reached for the moment (bus.Unavailable), so the core
// retries in place instead of spending one of the command's attempts.
func markUnavailable(err error) error {
	if bus.Unavailable(err) {
		return fmt.Errorf("%w: %w", deliver.ErrUnavailable, err)
	}
	return err
}
