package localnats_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crmslack/crmslack/libs/devpki"
	"github.com/crmslack/crmslack/libs/localnats"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/trust"
)

// These tests call the package directly to test its own API; only
// testkit's Context and Eventually are borrowed.

// user is the one user of these tests' servers, allowed everything.
var user = &server.User{Username: "test", Password: "test-password"}

func start(t *testing.T, opts localnats.Options) *localnats.Server {
	t.Helper()
	opts.Users = []*server.User{user}
	opts.TLS = serverTLS(t)
	srv, err := localnats.Start(opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// serverTLS is the test's server identity; clients present the test's
// toolbox certificate (clientTLS).
func serverTLS(t testing.TB) *tls.Config {
	return testkit.Identity(t, testkit.PKI(t), "nats").ServerConfig()
}

func clientTLS(t testing.TB) nats.Option {
	return trust.NATSTLS(testkit.Identity(t, testkit.PKI(t), devpki.Toolbox))
}

func connect(t *testing.T, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.UserInfo(user.Username, user.Password), clientTLS(t), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	return nc, js
}

func TestStartValidates(t *testing.T) {
	t.Parallel()
	_, err := localnats.Start(localnats.Options{Users: []*server.User{user}})
	if !errors.Is(err, localnats.ErrNoStoreDir) {
		t.Fatalf("Start without StoreDir: got %v, want ErrNoStoreDir", err)
	}
	// No server lets anyone in: a missing user list is an error, not an
	// open door.
	_, err = localnats.Start(localnats.Options{StoreDir: t.TempDir()})
	if !errors.Is(err, localnats.ErrNoUsers) {
		t.Fatalf("Start without Users: got %v, want ErrNoUsers", err)
	}
	// Nor one that takes passwords in the clear.
	_, err = localnats.Start(localnats.Options{StoreDir: t.TempDir(), Users: []*server.User{user}})
	if !errors.Is(err, localnats.ErrNoTLS) {
		t.Fatalf("Start without TLS: got %v, want ErrNoTLS", err)
	}
}

// TestNoPlainClients: a client without TLS, or with TLS but no certificate
// of the CA, is turned away before its password counts.
func TestNoPlainClients(t *testing.T) {
	t.Parallel()
	srv := start(t, localnats.Options{StoreDir: t.TempDir()})
	if nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo(user.Username, user.Password)); err == nil {
		nc.Close()
		t.Fatal("a plain client got in")
	}
	other := trust.NATSTLS(testkit.Identity(t, testkit.OtherPKI(t), devpki.Toolbox))
	if nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo(user.Username, user.Password), other); err == nil {
		nc.Close()
		t.Fatal("a certificate of another CA got in")
	}
}

func TestStartPublishConsume(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	srv := start(t, localnats.Options{StoreDir: t.TempDir()})
	if !strings.HasPrefix(srv.ClientURL(), "nats://127.0.0.1:") {
		t.Fatalf("ClientURL = %q, want loopback", srv.ClientURL())
	}
	_, js := connect(t, srv.ClientURL())

	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}})
	if err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	if _, err := js.Publish(ctx, "orders.1", []byte("hello"), jetstream.WithMsgID("id-1")); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	// Same Nats-Msg-Id again: JetStream's dedupe window must drop it.
	ack, err := js.Publish(ctx, "orders.1", []byte("hello"), jetstream.WithMsgID("id-1"))
	if err != nil {
		t.Fatalf("Publish duplicate: %v", err)
	}
	if !ack.Duplicate {
		t.Errorf("second publish with the same msg id: Duplicate = false")
	}
	msg, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatalf("GetMsg: %v", err)
	}
	if string(msg.Data) != "hello" {
		t.Errorf("message data = %q, want hello", msg.Data)
	}
}

// TestRestartKeepsStreams covers both ways a caller restarts: in place
// (same URL, clients reconnect) and a new server on the same directory.
func TestRestartKeepsStreams(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		restart func(t *testing.T, srv *localnats.Server) *localnats.Server
	}{
		{"Restart in place", func(t *testing.T, srv *localnats.Server) *localnats.Server {
			if err := srv.Restart(); err != nil {
				t.Fatalf("Restart: %v", err)
			}
			return srv
		}},
		{"Shutdown then Start on same dir", func(t *testing.T, srv *localnats.Server) *localnats.Server {
			srv.Shutdown()
			return start(t, localnats.Options{StoreDir: srv.StoreDir()})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testkit.Context(t)
			srv := start(t, localnats.Options{StoreDir: t.TempDir()})
			nc, js := connect(t, srv.ClientURL())
			const n = 50
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
				Name: "EVENTS", Subjects: []string{"events.>"}, Storage: jetstream.FileStorage,
			}); err != nil {
				t.Fatalf("CreateStream: %v", err)
			}
			cons, err := js.CreateOrUpdateConsumer(ctx, "EVENTS", jetstream.ConsumerConfig{
				Durable: "worker", AckPolicy: jetstream.AckExplicitPolicy,
			})
			if err != nil {
				t.Fatalf("CreateOrUpdateConsumer: %v", err)
			}
			for i := range n {
				if _, err := js.Publish(ctx, fmt.Sprintf("events.%d", i), []byte("x")); err != nil {
					t.Fatalf("Publish %d: %v", i, err)
				}
			}
			// Ack the first ten so the durable's ack floor must survive too.
			batch, err := cons.Fetch(10, jetstream.FetchMaxWait(5*time.Second))
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			for m := range batch.Messages() {
				if err := m.DoubleAck(ctx); err != nil {
					t.Fatalf("DoubleAck: %v", err)
				}
			}
			nc.Close()

			srv = tt.restart(t, srv)

			_, js = connect(t, srv.ClientURL())
			s, err := js.Stream(ctx, "EVENTS")
			if err != nil {
				t.Fatalf("Stream after restart: %v", err)
			}
			info, err := s.Info(ctx)
			if err != nil {
				t.Fatalf("Info: %v", err)
			}
			if info.State.Msgs != n {
				t.Errorf("messages after restart = %d, want %d", info.State.Msgs, n)
			}
			cons, err = js.Consumer(ctx, "EVENTS", "worker")
			if err != nil {
				t.Fatalf("Consumer after restart: %v", err)
			}
			ci, err := cons.Info(ctx)
			if err != nil {
				t.Fatalf("consumer Info: %v", err)
			}
			if ci.AckFloor.Stream != 10 || ci.NumPending != n-10 {
				t.Errorf("consumer after restart: ack floor %d pending %d, want 10 and %d",
					ci.AckFloor.Stream, ci.NumPending, n-10)
			}
		})
	}
}

// TestRestartClientReconnects checks the in-place restart keeps the URL, so
// a connected client carries on without being told.
func TestRestartClientReconnects(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	srv := start(t, localnats.Options{StoreDir: t.TempDir()})
	url := srv.ClientURL()
	_, js := connect(t, url)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s"}}); err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if got := srv.ClientURL(); got != url {
		t.Fatalf("ClientURL after Restart = %q, want %q", got, url)
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		_, err := js.Publish(ctx, "s", []byte("after"))
		return err == nil
	}, "publish after restart")
}

func TestLoggerRoutesToSlog(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := start(t, localnats.Options{StoreDir: t.TempDir(), Logger: logger})
	srv.Shutdown()
	out := buf.String()
	if !strings.Contains(out, "level=DEBUG") || !strings.Contains(out, "component=nats-server") {
		t.Errorf("expected nats-server notices at debug in the log, got:\n%s", out)
	}
}

func TestShutdownIdempotent(t *testing.T) {
	t.Parallel()
	srv := start(t, localnats.Options{StoreDir: t.TempDir()})
	srv.Shutdown()
	srv.Shutdown()
	if srv.NATS() != nil {
		t.Errorf("NATS() after Shutdown should be nil")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// BenchmarkStart times a start (JetStream on file storage) and shutdown, the
// cost testkit pays per test for a fresh server.
func BenchmarkStart(b *testing.B) {
	for b.Loop() {
		srv, err := localnats.Start(localnats.Options{StoreDir: b.TempDir(), Users: []*server.User{user}, TLS: serverTLS(b)})
		if err != nil {
			b.Fatal(err)
		}
		srv.Shutdown()
	}
}
