// Package store opens a service's MongoDB database with bounded connect and
// operation deadlines and creates its indexes at start-up.
//
// The same code runs against production MongoDB 6.0+ replica sets and the
// embedded FerretDB v1 used by tests and the local runner, so it uses only
// what both support: no change streams, no transactions, no TTL or partial
// indexes. On FerretDB every read, update and delete scans the whole
// collection (see /work/shared/measured-ceilings.md), so hot paths write with
// inserts and treat a duplicate key as "already done" ([IsDuplicate]).
//
// This package never imports FerretDB; see libs/localmongo.
package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
)

// Defaults applied by [Open] to zero-valued [Config] fields.
const (
	DefaultConnectTimeout   = 10 * time.Second
	DefaultOperationTimeout = 10 * time.Second
)

// Config is a service's database configuration. Fields set here override
// the same options given in URI.
type Config struct {
	// URI is the MongoDB connection string (mongodb:// or mongodb+srv://).
	// Required. May carry credentials: it is never logged or put in errors.
	URI string
	// Database is the service's own database; one per service. Required;
	// letters, digits, '_' and '-', at most 63 (the names both MongoDB and
	// FerretDB accept).
	Database string
	// ConnectTimeout bounds dialling a server, selecting one, and the ping in
	// [Open]. Default DefaultConnectTimeout.
	ConnectTimeout time.Duration
	// OperationTimeout is the client-wide deadline for each operation
	// (retries included) whose context has none. Default
	// DefaultOperationTimeout.
	OperationTimeout time.Duration
	// AppName is reported to the server (visible in currentOp and the server
	// log). Optional; set it to the service name.
	AppName string
}

var databaseNameRe = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,63}$`)

// Validate reports the first invalid field, by name. It does no I/O (a
// mongodb+srv URI is resolved only by [Open]).
func (c Config) Validate() error {
	switch {
	case c.URI == "":
		return errors.New("store: Config.URI is required")
	case !strings.HasPrefix(c.URI, "mongodb://") && !strings.HasPrefix(c.URI, "mongodb+srv://"):
		return errors.New("store: Config.URI must start with mongodb:// or mongodb+srv://")
	case c.Database == "":
		return errors.New("store: Config.Database is required")
	case !databaseNameRe.MatchString(c.Database):
		return fmt.Errorf("store: Config.Database %q: use 1-63 letters, digits, '_' or '-'", c.Database)
	case c.ConnectTimeout < 0:
		return fmt.Errorf("store: Config.ConnectTimeout %s must not be negative", c.ConnectTimeout)
	case c.OperationTimeout < 0:
		return fmt.Errorf("store: Config.OperationTimeout %s must not be negative", c.OperationTimeout)
	case len(c.AppName) > 128:
		return errors.New("store: Config.AppName is longer than 128 bytes (MongoDB's limit)")
	}
	return nil
}

// Store is one service's database. Safe for concurrent use.
type Store struct {
	client *mongo.Client
	db     *mongo.Database
}

// Open connects and pings within cfg.ConnectTimeout (or ctx, if sooner), so a
// service that cannot reach its database fails at start-up with a clear
// error instead of on its first message.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.OperationTimeout == 0 {
		cfg.OperationTimeout = DefaultOperationTimeout
	}
	opts := options.Client().ApplyURI(cfg.URI).
		SetConnectTimeout(cfg.ConnectTimeout).
		SetServerSelectionTimeout(cfg.ConnectTimeout).
		// Retryable writes and reads ride out a replica-set election; the
		// driver only uses them where the server supports them.
		SetRetryWrites(true).
		SetRetryReads(true).
		SetTimeout(cfg.OperationTimeout)
	if cfg.AppName != "" {
		opts.SetAppName(cfg.AppName)
	}
	client, err := mongo.Connect(opts)
	if err != nil {
		// Wording without the URI on purpose: it may hold a password.
		return nil, fmt.Errorf("store: Config.URI: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	if err := client.Ping(pingCtx, readpref.Primary()); err != nil {
		// Disconnect bounded too: it must not hold up start-up failure.
		dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer dcancel()
		_ = client.Disconnect(dctx)
		return nil, fmt.Errorf("store: cannot reach MongoDB at %s (database %s) within %s: %w",
			strings.Join(opts.Hosts, ","), cfg.Database, cfg.ConnectTimeout, err)
	}
	return &Store{client: client, db: client.Database(cfg.Database)}, nil
}

// DB returns the service's database.
func (s *Store) DB() *mongo.Database { return s.db }

// Collection returns a collection of the service's database.
func (s *Store) Collection(name string) *mongo.Collection { return s.db.Collection(name) }

// Ping checks the primary answers; use it for readiness.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx, readpref.Primary()); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// Close disconnects, waiting for in-use connections until ctx is done.
// Closing twice is not an error.
func (s *Store) Close(ctx context.Context) error {
	err := s.client.Disconnect(ctx)
	if err != nil && !errors.Is(err, mongo.ErrClientDisconnected) {
		return fmt.Errorf("store: disconnect: %w", err)
	}
	return nil
}

// IsDuplicate reports whether err is a duplicate-key error (E11000), i.e. an
// insert lost to an earlier one with the same unique key.
func IsDuplicate(err error) bool { return mongo.IsDuplicateKeyError(err) }

// IndexSpec is one index of one collection, for [Store.EnsureIndexes].
type IndexSpec struct {
	Collection string
	Model      mongo.IndexModel
}

// EnsureIndexes creates the indexes at start-up. Creating an index that
// already exists with the same keys and options is a no-op on both servers,
// so every replica calls it on every start.
//
// Changing an existing index's definition needs a migration (drop, then
// create): MongoDB refuses the new one with IndexOptionsConflict or
// IndexKeySpecsConflict, and FerretDB would silently keep the old one, so
// a changed unique flag is checked here and reported the same on both.
func (s *Store) EnsureIndexes(ctx context.Context, specs []IndexSpec) error {
	// Grouped by collection, in first-seen order, to list each one once.
	var order []string
	byColl := map[string][]mongo.IndexModel{}
	for _, sp := range specs {
		if _, ok := byColl[sp.Collection]; !ok {
			order = append(order, sp.Collection)
		}
		byColl[sp.Collection] = append(byColl[sp.Collection], sp.Model)
	}
	for _, coll := range order {
		models := byColl[coll]
		iv := s.db.Collection(coll).Indexes()
		// One index per call: FerretDB v1.24 panics (and drops the
		// connection) on a createIndexes listing two or more that exist.
		names := make([]string, len(models))
		for i, m := range models {
			name, err := iv.CreateOne(ctx, m)
			if err != nil {
				return fmt.Errorf("store: creating index %v on %s.%s: %w", m.Keys, s.db.Name(), coll, err)
			}
			names[i] = name
		}
		if err := checkUnique(ctx, iv, names, models); err != nil {
			return fmt.Errorf("store: indexes on %s.%s: %w", s.db.Name(), coll, err)
		}
	}
	return nil
}

// checkUnique compares the unique flag of each wanted index with the one
// the server holds.
func checkUnique(ctx context.Context, iv mongo.IndexView, names []string, models []mongo.IndexModel) error {
	cur, err := iv.List(ctx)
	if err != nil {
		return fmt.Errorf("listing: %w", err)
	}
	var existing []struct {
		Name   string `bson:"name"`
		Unique bool   `bson:"unique"`
	}
	if err := cur.All(ctx, &existing); err != nil {
		return fmt.Errorf("listing: %w", err)
	}
	have := make(map[string]bool, len(existing))
	for _, e := range existing {
		have[e.Name] = e.Unique
	}
	for i, m := range models {
		want := false
		if m.Options != nil {
			var o options.IndexOptions
			for _, set := range m.Options.List() {
				if err := set(&o); err != nil {
					return err
				}
			}
			want = o.Unique != nil && *o.Unique
		}
		if got, ok := have[names[i]]; ok && got != want {
			return fmt.Errorf("index %s exists with unique=%t, want unique=%t: drop it to change it", names[i], got, want)
		}
	}
	return nil
}
