package localmongo_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/crmslack/crmslack/libs/localmongo"
	"github.com/crmslack/crmslack/libs/testkit"
)

// These tests call the package directly to test its own API; only
// testkit.Context is borrowed.

func start(t *testing.T, dir string, logger *slog.Logger) *localmongo.Server {
	t.Helper()
	srv, err := localmongo.Start(t.Context(), localmongo.Options{Dir: dir, Logger: logger})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close(context.Background()) })
	return srv
}

func connect(t *testing.T, uri string) *mongo.Client {
	t.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(uri).SetTimeout(10 * time.Second))
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return c
}

func TestStartRequiresDir(t *testing.T) {
	t.Parallel()
	if _, err := localmongo.Start(t.Context(), localmongo.Options{}); err == nil {
		t.Fatal("Start without Dir: want error")
	}
}

func TestInsertDuplicateAndFastClose(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	var logs syncBuffer
	srv := start(t, t.TempDir(), slog.New(slog.NewTextHandler(&logs, nil)))
	if !strings.HasPrefix(srv.URI(), "mongodb://127.0.0.1:") {
		t.Fatalf("URI = %q, want loopback", srv.URI())
	}
	c := connect(t, srv.URI())
	coll := c.Database("app").Collection("things")

	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "a"}, {Key: "n", Value: 1}}); err != nil {
		t.Fatalf("InsertOne: %v", err)
	}
	_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "a"}, {Key: "n", Value: 2}})
	if !mongo.IsDuplicateKeyError(err) {
		t.Fatalf("second InsertOne with the same _id: got %v, want a duplicate-key error", err)
	}
	var got struct{ N int }
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: "a"}}).Decode(&got); err != nil {
		t.Fatalf("FindOne: %v", err)
	}
	if got.N != 1 {
		t.Errorf("n = %d, want 1 (the duplicate must not overwrite)", got.N)
	}

	// Disconnect first (sends endSessions, which FerretDB lacks), then Close.
	if err := c.Disconnect(ctx); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	begin := time.Now()
	if err := srv.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(begin); d > time.Second {
		t.Errorf("Close took %s after clients disconnected, want well under 1s", d)
	}
	if err := srv.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if out := logs.String(); out != "" {
		t.Errorf("default logging should be quiet (nothing at Warn+ on a normal session), got:\n%s", out)
	}
}

func TestRestartKeepsData(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	dir := t.TempDir()

	srv := start(t, dir, nil)
	c := connect(t, srv.URI())
	if _, err := c.Database("app").Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Fatalf("InsertOne: %v", err)
	}
	_ = c.Disconnect(ctx)
	if err := srv.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}

	srv = start(t, dir, nil)
	c = connect(t, srv.URI())
	defer func() { _ = c.Disconnect(ctx) }()
	n, err := c.Database("app").Collection("c").CountDocuments(ctx, bson.D{})
	if err != nil {
		t.Fatalf("CountDocuments: %v", err)
	}
	if n != 1 {
		t.Errorf("documents after restart = %d, want 1", n)
	}
}

// TestCloseRespectsContext: a client left connected holds Close for FerretDB's
// ~3 s grace period; Close must give up when its context does.
func TestCloseRespectsContext(t *testing.T) {
	t.Parallel()
	srv := start(t, t.TempDir(), nil)
	c := connect(t, srv.URI())
	if err := c.Ping(t.Context(), nil); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := srv.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close with a client still connected and a 100ms deadline: got %v, want DeadlineExceeded", err)
	}
	_ = c.Disconnect(context.Background())
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

// BenchmarkStart times a start, first connection and close: the cost
// testkit pays per test for a fresh server (it is why testkit shares none).
func BenchmarkStart(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		srv, err := localmongo.Start(ctx, localmongo.Options{Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		c, err := mongo.Connect(options.Client().ApplyURI(srv.URI()))
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Ping(ctx, nil); err != nil {
			b.Fatal(err)
		}
		_ = c.Disconnect(ctx)
		if err := srv.Close(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
