// Package localmongo runs an embedded FerretDB v1 (MongoDB wire protocol on
// SQLite) for tests and the local runner.
//
// This is the only package that imports FerretDB: services talk to it, and
// to production MongoDB, through libs/store and the MongoDB driver, so no
// service binary links FerretDB or SQLite.
//
// Know its limits before leaning on it (see /work/shared/measured-ceilings.md):
// writes are serialised, every read/update/delete scans the whole
// collection, and there are no change streams or transactions. Indexes only
// enforce uniqueness.
//
// Shut down in this order: disconnect clients, then [Server.Close]. FerretDB
// gives connections still open at Close about 3 s to finish, so a client left
// connected makes Close take that long.
package localmongo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// DefaultAddr listens on a free loopback port.
const DefaultAddr = "127.0.0.1:0"

// Options configures [Start]. Only Dir is required.
type Options struct {
	// Dir holds one SQLite file per database. Required; created if missing.
	// Starting again on the same Dir keeps the data.
	Dir string
	// Addr is the TCP listen address. Default DefaultAddr.
	Addr string
	// Logger receives FerretDB's log at Warn and above only: below that it
	// logs every connection and, at Debug, every request body. Nil uses
	// slog.Default(). The noise of the unsupported endSessions (sent by every
	// driver on Disconnect) is dropped.
	Logger *slog.Logger
}

// Server is a running embedded FerretDB.
type Server struct {
	uri    string
	cancel context.CancelFunc
	done   chan struct{} // closed when Run has returned
}

// newMu serialises ferretdb.New, which writes a package-level variable
// (version.Get().Package) and so races when tests start servers in parallel.
var newMu sync.Mutex

// Start starts FerretDB and returns once it is listening; it runs until
// [Server.Close] or until ctx is cancelled (cancelling ctx is an abrupt stop;
// prefer Close).
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("localmongo: Options.Dir is required")
	}
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("localmongo: Options.Dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("localmongo: creating Options.Dir: %w", err)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}

	newMu.Lock()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: opts.Addr},
		Handler:  "sqlite",
		// FerretDB wants a file: URI naming a directory, with the trailing slash.
		SQLiteURL: "file:" + filepath.ToSlash(dir) + "/",
		Logger:    slog.New(quietHandler{h: logger.Handler()}),
	})
	newMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("localmongo: starting FerretDB in %s on %s: %w", dir, opts.Addr, err)
	}

	// New has already bound the listener, so the URI is known now and
	// clients can connect as soon as Run's accept loop starts.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &Server{uri: f.MongoDBURI(), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		_ = f.Run(runCtx) // always nil; it returns once every connection has ended
	}()
	// Tie the parent ctx to the server's lifetime without holding a goroutine
	// after Close.
	stop := context.AfterFunc(ctx, cancel)
	go func() {
		<-s.done
		stop()
	}()
	return s, nil
}

// URI returns the MongoDB connection string, e.g. mongodb://127.0.0.1:40123/.
func (s *Server) URI() string { return s.uri }

// Close stops FerretDB and waits until it has stopped or ctx is done. It is
// fast when clients have disconnected first; see the package doc. Calling it
// again is safe.
func (s *Server) Close(ctx context.Context) error {
	s.cancel()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("localmongo: waiting for FerretDB to stop: %w", context.Cause(ctx))
	}
}

// quietHandler passes on records at Warn and above, minus the noise of a
// failed request: FerretDB logs every failed response as two records, a
// content-free "Response header" line (the only trace an unsupported
// endSessions leaves, on every driver Disconnect) and a "Response message"
// carrying the error, which is kept unless it is about endSessions. The
// client receives the error either way. Attributes and groups are applied
// only to a record that is passed on: FerretDB derives a logger per request,
// and formatting its attributes up front cost ~10 KB per insert.
type quietHandler struct {
	h    slog.Handler
	with []func(slog.Handler) slog.Handler
}

func (q quietHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && q.h.Enabled(ctx, l)
}

func (q quietHandler) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "Response header:") || strings.Contains(r.Message, "endSessions") {
		return nil
	}
	h := q.h
	for _, w := range q.with {
		h = w(h)
	}
	return h.Handle(ctx, r)
}

func (q quietHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return q.and(func(h slog.Handler) slog.Handler { return h.WithAttrs(as) })
}

func (q quietHandler) WithGroup(name string) slog.Handler {
	return q.and(func(h slog.Handler) slog.Handler { return h.WithGroup(name) })
}

func (q quietHandler) and(w func(slog.Handler) slog.Handler) quietHandler {
	return quietHandler{h: q.h, with: append(slices.Clip(q.with), w)}
}
