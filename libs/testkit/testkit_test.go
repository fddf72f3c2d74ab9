package testkit_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/crmslack/crmslack/libs/store"
	"github.com/crmslack/crmslack/libs/testkit"
)

// fakeTB records what a helper reports. Fatalf ends the calling goroutine
// like the real one, so helpers under test must run on their own goroutine
// (see run). Methods not overridden panic via the nil embedded TB, which
// flags a helper using something unexpected.
type fakeTB struct {
	testing.TB
	mu     sync.Mutex
	failed bool
	msg    string
	logs   []string
}

func (f *fakeTB) Helper()      {}
func (f *fakeTB) Name() string { return "fake" }

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeTB) Log(args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs = append(f.logs, fmt.Sprint(args...))
}

func (f *fakeTB) Cleanup(func()) {}

// run calls fn(f) on a new goroutine and waits for it to return or Goexit.
func (f *fakeTB) run(fn func(testing.TB)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
}

func TestEventually(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		timeout    time.Duration
		trueAfter  int32 // calls before cond turns true; -1 never
		msgAndArgs []any
		wantFail   bool
		wantMsg    string
	}{
		{name: "true at once", timeout: time.Second, trueAfter: 0},
		{name: "true after a few ticks", timeout: 5 * time.Second, trueAfter: 3},
		{name: "never, no message", timeout: 50 * time.Millisecond, trueAfter: -1,
			wantFail: true, wantMsg: "condition not met within 50ms"},
		{name: "never, formatted message", timeout: 50 * time.Millisecond, trueAfter: -1,
			msgAndArgs: []any{"consumer acked %d of %d", 3, 5},
			wantFail:   true, wantMsg: "condition not met within 50ms: consumer acked 3 of 5"},
		{name: "never, non-string message", timeout: 50 * time.Millisecond, trueAfter: -1,
			msgAndArgs: []any{42}, wantFail: true, wantMsg: ": 42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			cond := func() bool { return tt.trueAfter >= 0 && calls.Add(1) > tt.trueAfter }
			f := &fakeTB{}
			begin := time.Now()
			f.run(func(tb testing.TB) { testkit.Eventually(tb, tt.timeout, cond, tt.msgAndArgs...) })
			elapsed := time.Since(begin)

			if f.failed != tt.wantFail {
				t.Fatalf("failed = %t, want %t (msg %q)", f.failed, tt.wantFail, f.msg)
			}
			if !strings.Contains(f.msg, tt.wantMsg) {
				t.Errorf("message = %q, want it to contain %q", f.msg, tt.wantMsg)
			}
			if tt.wantFail && (elapsed < tt.timeout || elapsed > tt.timeout+time.Second) {
				t.Errorf("failed after %s, want about %s", elapsed, tt.timeout)
			}
		})
	}
}

func TestContext(t *testing.T) {
	t.Parallel()
	var ctx context.Context
	t.Run("inner", func(t *testing.T) {
		ctx = testkit.Context(t)
		if _, ok := ctx.Deadline(); !ok {
			t.Error("Context has no deadline")
		}
		if ctx.Err() != nil {
			t.Errorf("Context already done: %v", ctx.Err())
		}
	})
	if ctx.Err() == nil {
		t.Error("Context not cancelled after the test's cleanup")
	}
}

func TestLogger(t *testing.T) {
	t.Parallel()
	f := &fakeTB{}
	testkit.Logger(f).Debug("hello", "k", "v")
	if len(f.logs) != 1 || !strings.Contains(f.logs[0], "msg=hello k=v") || strings.HasSuffix(f.logs[0], "\n") {
		t.Errorf("logs = %q, want one debug line with msg=hello k=v", f.logs)
	}
}

func TestNATS(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	srv := testkit.NATS(t)
	js := testkit.JetStream(t, testkit.NATSConn(t, srv))
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	if _, err := js.Publish(ctx, "t.1", []byte("x")); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	// The kit's connection must ride out a server restart.
	if err := srv.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		_, err := js.Publish(ctx, "t.2", []byte("y"))
		return err == nil
	}, "publish after restart")
}

// TestStoreCleanupIsFast checks the cleanup order: the store's client is
// disconnected before FerretDB closes, so no ~3 s grace period is spent.
func TestStoreCleanupIsFast(t *testing.T) {
	t.Parallel()
	var begin time.Time
	t.Run("inner", func(t *testing.T) {
		s := testkit.Store(t, "kit")
		ctx := testkit.Context(t)
		if _, err := s.Collection("c").InsertOne(ctx, bson.D{{Key: "a", Value: 1}}); err != nil {
			t.Fatalf("InsertOne: %v", err)
		}
		t.Cleanup(func() { begin = time.Now() }) // runs first of the cleanups
	})
	if d := time.Since(begin); d > time.Second {
		t.Errorf("cleanup took %s, want well under the 3 s FerretDB grace period", d)
	}
}

func TestStoreOnSharesServer(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	srv := testkit.Mongo(t)
	a, b := testkit.StoreOn(t, srv, "a"), testkit.StoreOn(t, srv, "b")
	// Same _id, other database: independent.
	for name, s := range map[string]*store.Store{"a": a, "b": b} {
		if _, err := s.Collection("seen").InsertOne(ctx, bson.D{{Key: "_id", Value: "k"}}); err != nil {
			t.Fatalf("insert on %s: %v", name, err)
		}
	}
}
