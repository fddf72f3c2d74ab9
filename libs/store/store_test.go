package store_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/crmslack/crmslack/libs/store"
	"github.com/crmslack/crmslack/libs/testkit"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	valid := store.Config{URI: "mongodb://127.0.0.1:27017", Database: "crm-sync_1"}
	tests := []struct {
		name    string
		mutate  func(*store.Config)
		wantErr string // "" for valid
	}{
		{"valid", func(*store.Config) {}, ""},
		{"valid srv", func(c *store.Config) { c.URI = "mongodb+srv://cluster.example.com" }, ""},
		{"missing URI", func(c *store.Config) { c.URI = "" }, "Config.URI is required"},
		{"bad scheme", func(c *store.Config) { c.URI = "postgres://x" }, "Config.URI must start with"},
		{"missing Database", func(c *store.Config) { c.Database = "" }, "Config.Database is required"},
		{"Database with dot", func(c *store.Config) { c.Database = "a.b" }, `Config.Database "a.b"`},
		{"Database too long", func(c *store.Config) { c.Database = strings.Repeat("a", 64) }, "Config.Database"},
		{"negative ConnectTimeout", func(c *store.Config) { c.ConnectTimeout = -time.Second }, "Config.ConnectTimeout"},
		{"negative OperationTimeout", func(c *store.Config) { c.OperationTimeout = -1 }, "Config.OperationTimeout"},
		{"AppName too long", func(c *store.Config) { c.AppName = strings.Repeat("x", 129) }, "Config.AppName"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := valid
			tt.mutate(&cfg)
			err := cfg.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
			if tt.wantErr != "" {
				// Open must refuse the same config before any I/O.
				if _, err := store.Open(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Open() = %v, want the validation error", err)
				}
			}
		})
	}
}

func TestOpenUnreachableFailsFast(t *testing.T) {
	t.Parallel()
	// A port nothing listens on: bind one, then free it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()

	const timeout = 500 * time.Millisecond
	begin := time.Now()
	s, err := store.Open(t.Context(), store.Config{
		URI:            "mongodb://svc:s3cret@" + addr + "/",
		Database:       "x",
		ConnectTimeout: timeout,
	})
	elapsed := time.Since(begin)
	if err == nil {
		_ = s.Close(context.Background())
		t.Fatal("Open against a closed port succeeded")
	}
	if elapsed > timeout+2*time.Second {
		t.Errorf("Open took %s to fail, want about %s", elapsed, timeout)
	}
	msg := err.Error()
	if !strings.Contains(msg, "cannot reach MongoDB at "+addr) || !strings.Contains(msg, "within 500ms") {
		t.Errorf("error %q should name the address and the deadline", msg)
	}
	if strings.Contains(msg, "s3cret") {
		t.Errorf("error leaks the password: %q", msg)
	}
}

func TestOpenPingClose(t *testing.T) {
	t.Parallel()
	srv := testkit.Mongo(t)
	ctx := testkit.Context(t)
	s, err := store.Open(ctx, store.Config{URI: srv.URI(), Database: "svc", AppName: "store-test"})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if got := s.DB().Name(); got != "svc" {
		t.Errorf("DB().Name() = %q", got)
	}
	if err := s.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestEnsureIndexes(t *testing.T) {
	t.Parallel()
	s := testkit.Store(t, "idx")
	ctx := testkit.Context(t)
	specs := []store.IndexSpec{
		{Collection: "deliveries", Model: mongo.IndexModel{
			Keys:    bson.D{{Key: "event_id", Value: 1}},
			Options: options.Index().SetUnique(true).SetName("event_id_unique"),
		}},
		{Collection: "deliveries", Model: mongo.IndexModel{Keys: bson.D{{Key: "team", Value: 1}, {Key: "at", Value: -1}}}},
		{Collection: "teams", Model: mongo.IndexModel{Keys: bson.D{{Key: "slack_id", Value: 1}}}},
	}
	// Twice, as two replicas starting (or one restarting) would.
	for i := range 2 {
		if err := s.EnsureIndexes(ctx, specs); err != nil {
			t.Fatalf("EnsureIndexes run %d: %v", i+1, err)
		}
	}
	// The unique index is enforced.
	c := s.Collection("deliveries")
	if _, err := c.InsertOne(ctx, bson.D{{Key: "event_id", Value: "e1"}}); err != nil {
		t.Fatalf("InsertOne: %v", err)
	}
	if _, err := c.InsertOne(ctx, bson.D{{Key: "event_id", Value: "e1"}}); !store.IsDuplicate(err) {
		t.Fatalf("second insert of event_id e1: got %v, want duplicate", err)
	}
	// Changing the unique flag of an existing index is reported, not
	// silently ignored (FerretDB would; MongoDB refuses).
	changed := []store.IndexSpec{{Collection: "deliveries", Model: mongo.IndexModel{
		Keys:    bson.D{{Key: "event_id", Value: 1}},
		Options: options.Index().SetName("event_id_unique"),
	}}}
	if err := s.EnsureIndexes(ctx, changed); err == nil || !strings.Contains(err.Error(), "event_id_unique") {
		t.Errorf("EnsureIndexes with a changed unique flag: got %v, want an error naming the index", err)
	}
}

func TestIsDuplicate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{fmt.Errorf("other"), false},
		{mongo.WriteException{WriteErrors: []mongo.WriteError{{Code: 11000}}}, true},
		{fmt.Errorf("wrapped: %w", mongo.WriteException{WriteErrors: []mongo.WriteError{{Code: 11000}}}), true},
		{mongo.WriteException{WriteErrors: []mongo.WriteError{{Code: 121}}}, false},
	}
	for _, tt := range tests {
		if got := store.IsDuplicate(tt.err); got != tt.want {
			t.Errorf("IsDuplicate(%v) = %t, want %t", tt.err, got, tt.want)
		}
	}
}
