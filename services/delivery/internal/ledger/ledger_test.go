package ledger

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/services/delivery/internal/deliver"
)

func newLedger(t *testing.T) *Ledger {
	t.Helper()
	srv := testkit.NATS(t)
	js := testkit.JetStream(t, testkit.NATSConn(t, srv))
	kv, err := Ensure(testkit.Context(t), js, 7*24*time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	return New(js, kv)
}

func TestClaimIsCreateOnly(t *testing.T) {
	t.Parallel()
	l := newLedger(t)
	ctx := testkit.Context(t)
	key := Key("org", "share:1")
	first := Record{State: Claimed, CommandID: "c1", Owner: "a", ClaimedAt: time.Now().UTC().Truncate(time.Millisecond), Channel: "C1"}
	e, created, err := l.Claim(ctx, key, first)
	if err != nil || !created {
		t.Fatalf("first claim: created=%v err=%v", created, err)
	}
	got, created, err := l.Claim(ctx, key, Record{State: Claimed, CommandID: "c2", Owner: "b"})
	if err != nil || created {
		t.Fatalf("second claim: created=%v err=%v", created, err)
	}
	if got.CommandID != "c1" || got.Owner != "a" || got.Revision != e.Revision || !got.ClaimedAt.Equal(first.ClaimedAt) {
		t.Fatalf("second claim sees %+v, want the first", got)
	}

	done := got.LedgerRecord
	done.State, done.TS = Done, "1700000000.000100"
	rev, err := l.Update(ctx, key, done, got.Revision)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Update(ctx, key, done, got.Revision); !errors.Is(err, ErrConflict) {
		t.Fatalf("update at a stale revision: %v, want ErrConflict", err)
	}
	if err := l.Release(ctx, key, got.Revision); !errors.Is(err, ErrConflict) {
		t.Fatalf("release at a stale revision: %v, want ErrConflict", err)
	}
	if err := l.Release(ctx, key, rev); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Get(ctx, key); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("after release: %v", err)
	}
	if _, created, err := l.Claim(ctx, key, first); err != nil || !created {
		t.Fatalf("claim after release: created=%v err=%v", created, err)
	}
}

func TestUpdateAsyncComparesAndSets(t *testing.T) {
	t.Parallel()
	l := newLedger(t)
	ctx := testkit.Context(t)
	key := Key("org", "async:1")
	e, _, err := l.Claim(ctx, key, Record{State: Claimed, CommandID: "c1", Owner: "a"})
	if err != nil {
		t.Fatal(err)
	}
	done := e.LedgerRecord
	done.State, done.TS = Done, "1700000000.000200"
	wait, err := l.UpdateAsync(ctx, key, done, e.Revision)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := wait()
	if err != nil {
		t.Fatal(err)
	}
	got, err := l.Get(ctx, key)
	if err != nil || got.Revision != rev || got.State != Done || got.TS != done.TS {
		t.Fatalf("after UpdateAsync: %+v, %v; want revision %d, done", got, err, rev)
	}
	wait, err = l.UpdateAsync(ctx, key, done, e.Revision)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wait(); !errors.Is(err, ErrConflict) {
		t.Fatalf("UpdateAsync at a stale revision: %v, want ErrConflict", err)
	}
}

func TestKeyScopesByOrg(t *testing.T) {
	t.Parallel()
	if Key("o1", "k") == Key("o2", "k") || Key("o1", "k") != Key("o1", "k") {
		t.Fatal("keys must be stable per org and differ across orgs")
	}
	if Key("o1", "a\x00b") == Key("o1\x00a", "b") {
		t.Fatal("org and key must not run into each other")
	}
}

// TestOutOfReachIsUnavailable: with JetStream out of reach, the ledger's
// errors say so (deliver.ErrUnavailable), and the core retries them in
// place rather than spending the command's attempts.
func TestOutOfReachIsUnavailable(t *testing.T) {
	t.Parallel()
	srv := testkit.NATS(t)
	js := testkit.JetStream(t, testkit.NATSConn(t, srv))
	kv, err := Ensure(testkit.Context(t), js, time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	l := New(js, kv)
	srv.Shutdown()
	ctx, cancel := context.WithTimeout(testkit.Context(t), time.Second)
	defer cancel()
	if _, _, err := l.Claim(ctx, Key("org", "k"), Record{State: Claimed, CommandID: "c1", Owner: "a"}); !errors.Is(err, deliver.ErrUnavailable) {
		t.Fatalf("claim with the server down: %v; want deliver.ErrUnavailable", err)
	}
	if _, err := l.Update(ctx, Key("org", "k"), Record{State: Done}, 1); !errors.Is(err, deliver.ErrUnavailable) {
		t.Fatalf("update with the server down: %v; want deliver.ErrUnavailable", err)
	}
}
