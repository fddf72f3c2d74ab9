// Package testkit is the one test kit every crmslack test uses: real
// dependencies in-process (embedded NATS JetStream and FerretDB), each torn
// down by t.Cleanup in the right order, plus polling with a deadline instead
// of sleeping.
//
// Every helper gives the calling test its own server; there is no
// process-wide shared one. Measured on the 2-core reference machine
// (BenchmarkStart in localmongo and localnats): an embedded FerretDB starts,
// answers a ping and closes in about 1 ms, a nats-server with JetStream on
// file storage starts and stops in about 27 ms. Per-test servers are cheap,
// keep t.Parallel() safe and never leak state between tests.
//
// Cleanups run last-registered first, so a client created after its server
// is closed before it. That order matters for FerretDB, which otherwise
// waits ~3 s for idle client connections when it stops.
package testkit

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crmslack/crmslack/libs/localmongo"
	"github.com/crmslack/crmslack/libs/localnats"
	"github.com/crmslack/crmslack/libs/store"
)

// DefaultTimeout bounds [Context] and every server start or stop here.
const DefaultTimeout = 30 * time.Second

// Tick is how often [Eventually] re-checks its condition.
const Tick = 10 * time.Millisecond

// NATS starts an embedded nats-server with JetStream on file storage in a
// temporary directory, shut down at cleanup. Its warnings and errors go to
// t.Log. For crash tests, srv.Restart() keeps the data and the URL.
func NATS(t testing.TB) *localnats.Server {
	t.Helper()
	// Users and permissions of libs/natsauth, with the test's PKI(t)
	// passwords: services log in with their trust files, the test's own
	// connections as the toolbox user (NATSConn, NATSLogin), and each org
	// given to PKI(t, orgs...) before this call has its CRM user.
	orgs, err := PKI(t).CRMOrgs()
	if err != nil {
		t.Fatalf("testkit: NATS users: %v", err)
	}
	users, err := PKI(t).NATSUsers(orgs...)
	if err != nil {
		t.Fatalf("testkit: NATS users: %v", err)
	}
	srv, err := localnats.Start(localnats.Options{
		StoreDir: t.TempDir(),
		Users:    users,
		TLS:      natsServerTLS(t),
		Logger:   newLogger(t, slog.LevelWarn), // its notices are start-up chatter
	})
	if err != nil {
		t.Fatalf("testkit: starting NATS: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// NATSConn connects to srv, closed at cleanup (before srv shuts down). It
// reconnects forever, quickly, so a test may restart the server under it.
func NATSConn(t testing.TB, srv *localnats.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(srv.ClientURL(),
		NATSLogin(t),
		nats.Name(t.Name()),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(20*time.Millisecond),
	)
	if err != nil {
		t.Fatalf("testkit: connecting to NATS at %s: %v", srv.ClientURL(), err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// JetStream returns a JetStream context on nc.
func JetStream(t testing.TB, nc *nats.Conn) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("testkit: JetStream: %v", err)
	}
	return js
}

// Mongo starts a fresh embedded FerretDB in a temporary directory, closed at
// cleanup. Disconnect clients first (StoreOn does) or Close waits ~3 s.
func Mongo(t testing.TB) *localmongo.Server {
	t.Helper()
	srv, err := localmongo.Start(context.Background(), localmongo.Options{
		Dir:    t.TempDir(),
		Logger: newLogger(t, slog.LevelWarn),
	})
	if err != nil {
		t.Fatalf("testkit: starting FerretDB: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("testkit: closing FerretDB: %v", err)
		}
	})
	return srv
}

// Store opens database dbName on a fresh embedded FerretDB. Shorthand for
// StoreOn(t, Mongo(t), dbName).
func Store(t testing.TB, dbName string) *store.Store {
	t.Helper()
	return StoreOn(t, Mongo(t), dbName)
}

// StoreOn opens database dbName on srv, for tests that need several
// databases or clients on one server. The client is disconnected at cleanup,
// before srv closes, which keeps srv's Close fast.
func StoreOn(t testing.TB, srv *localmongo.Server, dbName string) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	s, err := store.Open(ctx, store.Config{
		URI:            srv.URI(),
		Database:       dbName,
		ConnectTimeout: 5 * time.Second,
		AppName:        "testkit",
	})
	if err != nil {
		t.Fatalf("testkit: opening store: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("testkit: closing store: %v", err)
		}
	})
	return s
}

// Context returns a context cancelled when the test's cleanup starts, or
// after DefaultTimeout (or the test binary's -timeout, if sooner), so a hung
// call fails the test with a deadline instead of hanging the binary.
func Context(t testing.TB) context.Context {
	t.Helper()
	deadline := time.Now().Add(DefaultTimeout)
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if td, ok := d.Deadline(); ok && td.Before(deadline) {
			deadline = td.Add(-time.Second) // leave time to report
		}
	}
	// t.Context() is cancelled just before cleanups run.
	ctx, cancel := context.WithDeadline(t.Context(), deadline)
	t.Cleanup(cancel)
	return ctx
}

// Eventually calls cond every Tick until it returns true, and fails the test
// (FailNow) if it has not within timeout. msgAndArgs, if given, is a format
// string and its arguments saying what was awaited. cond runs on the
// caller's goroutine.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msgAndArgs ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	ticker := time.NewTicker(Tick)
	defer ticker.Stop()
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testkit: condition not met within %s%s", timeout, describe(msgAndArgs))
			return // reached only with a fake testing.TB whose Fatalf returns
		}
		<-ticker.C
	}
}

// Closed waits until ch is closed (or yields), and fails the test (FailNow)
// if it has not within timeout, saying what was awaited.
func Closed[T any](t testing.TB, ch <-chan T, timeout time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(timeout):
		t.Fatalf("testkit: %s not within %s", what, timeout)
	}
}

// Lazy is a message argument of Eventually computed when the message is
// printed, such as the last value a condition saw.
type Lazy func() string

func (l Lazy) String() string { return l() }

func describe(msgAndArgs []any) string {
	if len(msgAndArgs) == 0 {
		return ""
	}
	if format, ok := msgAndArgs[0].(string); ok {
		return ": " + fmt.Sprintf(format, msgAndArgs[1:]...)
	}
	return ": " + fmt.Sprint(msgAndArgs...)
}

// Logger returns a debug-level slog logger writing to t.Log, so a test's
// log shows only when it fails (or with -v). Records logged after the test
// has finished are dropped rather than panicking.
func Logger(t testing.TB) *slog.Logger {
	return newLogger(t, slog.LevelDebug)
}

func newLogger(t testing.TB, level slog.Level) *slog.Logger {
	w := &tbWriter{t: t}
	// Registered before the caller's own cleanups, so it runs after them:
	// servers stopped in cleanup may still log while stopping.
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.done = true
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// tbWriter passes each record (one Write per record from slog's
// TextHandler) to t.Log.
type tbWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *tbWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}
