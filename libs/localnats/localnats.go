// Package localnats runs an embedded nats-server with JetStream on file
// storage, for tests and the local runner.
//
// It is a thin wrapper over github.com/nats-io/nats-server/v2/server that
// fixes the choices every caller would otherwise repeat: loopback only, a
// random port unless asked, no signal handlers (the host process owns
// SIGINT/SIGTERM), JetStream always on, logs off unless a logger is given,
// and a bounded wait for readiness instead of a sleep.
//
// Stream data lives under Options.StoreDir, so stopping a server and starting
// another on the same directory keeps every stream and durable consumer;
// crash and restart tests rely on that ([Server.Restart] does it in place and
// keeps the URL, so connected clients reconnect on their own).
package localnats

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Defaults applied by [Start] to zero-valued [Options] fields.
const (
	DefaultHost      = "127.0.0.1"
	DefaultMaxMemory = 256 << 20 // 256 MiB: ample for memory streams in tests and one developer machine.
	// DefaultMaxStore, 16 GiB, is a cap, not a reservation: it stops a runaway
	// local stream filling the disk, and holds a backfill of a million records
	// (about 1.7 GB of CRM events, kept 7 days, and 0.5 GB of snapshots) with
	// room for the rest.
	DefaultMaxStore     = 16 << 30
	DefaultReadyTimeout = 10 * time.Second
)

// Options configures [Start]. StoreDir, Users and TLS are required.
type Options struct {
	// Host to listen on. Default 127.0.0.1: never expose a dev server.
	Host string
	// Port to listen on. 0 picks a free port (nats-server's RANDOM_PORT),
	// not the 4222 nats-server would otherwise default to.
	Port int
	// StoreDir holds JetStream's file storage. Required: memory-only storage
	// would hide the restart and crash behaviour the tests exist to check.
	StoreDir string
	// MaxMemory and MaxStore cap JetStream memory and file storage, in bytes.
	// Defaults DefaultMaxMemory and DefaultMaxStore.
	MaxMemory int64
	MaxStore  int64
	// ReadyTimeout bounds the wait for the server to accept clients.
	// Default DefaultReadyTimeout (JetStream recovers streams before it is ready).
	ReadyTimeout time.Duration
	// Users are the only clients the server accepts, each with its subject
	// permissions (libs/natsauth builds them). Required: there is no server
	// that lets anyone in.
	Users []*server.User
	// TLS is the server's TLS configuration (mtls.Identity.ServerConfig of
	// the identity "nats"): every client must use TLS and, when it asks for
	// them (ServerConfig does), present a certificate of the CA. Required:
	// a password never travels in the clear, not even over loopback.
	TLS *tls.Config
	// Logger receives the server's log. Nil discards it. Notices and debug
	// lines go out at Debug (the server is chatty at start-up), warnings at
	// Warn, errors at Error.
	Logger *slog.Logger
}

// Errors of [Start] for a missing required option.
var (
	ErrNoStoreDir = errors.New("localnats: Options.StoreDir is required")
	ErrNoUsers    = errors.New("localnats: Options.Users is required (libs/natsauth, devpki.NATSUsers): a server accepts only known users")
	ErrNoTLS      = errors.New("localnats: Options.TLS is required (mtls.Identity.ServerConfig of the identity nats): clients connect over TLS only")
)

// Server is a running embedded nats-server. Its methods are safe for
// concurrent use.
type Server struct {
	mu   sync.Mutex
	opts Options // resolved: defaults applied, Port pinned after the first start
	ns   *server.Server
	url  string
}

// Start starts a server and waits until it accepts clients with JetStream
// enabled, or fails after Options.ReadyTimeout.
func Start(opts Options) (*Server, error) {
	if opts.StoreDir == "" {
		return nil, ErrNoStoreDir
	}
	if len(opts.Users) == 0 {
		return nil, ErrNoUsers
	}
	if opts.TLS == nil {
		return nil, ErrNoTLS
	}
	if opts.Host == "" {
		opts.Host = DefaultHost
	}
	if opts.MaxMemory == 0 {
		opts.MaxMemory = DefaultMaxMemory
	}
	if opts.MaxStore == 0 {
		opts.MaxStore = DefaultMaxStore
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = DefaultReadyTimeout
	}
	s := &Server{opts: opts}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// start runs a new nats-server for s.opts. The caller holds s.mu or owns s.
func (s *Server) start() error {
	port := s.opts.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	ns, err := server.NewServer(&server.Options{
		Host:               s.opts.Host,
		Port:               port,
		NoSigs:             true, // the host process owns signals
		NoLog:              s.opts.Logger == nil,
		JetStream:          true,
		StoreDir:           s.opts.StoreDir,
		JetStreamMaxMemory: s.opts.MaxMemory,
		JetStreamMaxStore:  s.opts.MaxStore,
		Users:              s.opts.Users,
		TLSConfig:          s.opts.TLS,
		TLS:                true,
		TLSVerify:          s.opts.TLS.ClientAuth >= tls.RequireAnyClientCert,
	})
	if err != nil {
		return fmt.Errorf("localnats: configuring server: %w", err)
	}
	if s.opts.Logger != nil {
		// debug on so Debugf reaches slog, where the handler's level decides;
		// trace stays off: it logs every protocol line, bodies included.
		ns.SetLoggerV2(slogAdapter{s.opts.Logger}, true, false, false)
	}
	go ns.Start()
	if !ns.ReadyForConnections(s.opts.ReadyTimeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return fmt.Errorf("localnats: server on %s:%d (store %s) not ready after %s",
			s.opts.Host, s.opts.Port, s.opts.StoreDir, s.opts.ReadyTimeout)
	}
	if !ns.JetStreamEnabled() {
		ns.Shutdown()
		ns.WaitForShutdown()
		return fmt.Errorf("localnats: JetStream did not start (store %s)", s.opts.StoreDir)
	}
	addr, ok := ns.Addr().(*net.TCPAddr)
	if !ok {
		ns.Shutdown()
		ns.WaitForShutdown()
		return fmt.Errorf("localnats: unexpected listener address %v", ns.Addr())
	}
	// Pin the port so a restart comes back on the same URL.
	s.opts.Port = addr.Port
	s.ns = ns
	s.url = "nats://" + net.JoinHostPort(s.opts.Host, strconv.Itoa(addr.Port))
	return nil
}

// ClientURL returns the URL clients connect to, e.g. nats://127.0.0.1:41234.
// It stays the same across [Server.Restart].
func (s *Server) ClientURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// StoreDir returns the JetStream storage directory.
func (s *Server) StoreDir() string { return s.opts.StoreDir }

// NATS returns the underlying server for the rare test that needs it
// (e.g. to inspect JetStream accounting). It changes on [Server.Restart].
func (s *Server) NATS() *server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ns
}

// Shutdown stops the server and waits until it has fully stopped, so the
// store directory may be reused or removed afterwards. Calling it again is a
// no-op.
func (s *Server) Shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shutdownLocked()
}

func (s *Server) shutdownLocked() {
	if s.ns == nil {
		return
	}
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
	s.ns = nil
}

// Restart stops the server (if running) and starts a new one on the same
// store directory and port, as a crash-and-recover would. Streams, their
// messages and durable consumers survive; clients see a disconnect and
// reconnect to the unchanged [Server.ClientURL]. It fails if another process
// took the port while the server was down.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shutdownLocked()
	return s.start()
}

// slogAdapter implements server.Logger on slog. It checks Enabled first so a
// quiet handler costs no formatting.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) log(level slog.Level, format string, v []any) {
	if a.l.Enabled(context.Background(), level) {
		a.l.Log(context.Background(), level, fmt.Sprintf(format, v...), "component", "nats-server")
	}
}

func (a slogAdapter) Noticef(format string, v ...any) { a.log(slog.LevelDebug, format, v) }
func (a slogAdapter) Debugf(format string, v ...any)  { a.log(slog.LevelDebug, format, v) }
func (a slogAdapter) Warnf(format string, v ...any)   { a.log(slog.LevelWarn, format, v) }
func (a slogAdapter) Errorf(format string, v ...any)  { a.log(slog.LevelError, format, v) }
func (a slogAdapter) Fatalf(format string, v ...any)  { a.log(slog.LevelError, format, v) }

// Tracef is never enabled (see start); it is here to satisfy server.Logger.
func (a slogAdapter) Tracef(string, ...any) {}
