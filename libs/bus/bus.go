package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmslack/crmslack/libs/tracectx"
)

// Defaults for zero-valued [Config] fields.
const (
	DefaultConnectTimeout = 5 * time.Second
	// Reconnect delays grow from 100 ms, doubling, to this ceiling, with
	// jitter so a restarted server is not hit by every client at once.
	DefaultMaxReconnectWait = 5 * time.Second
	// Bounds Close: in-flight handlers finish, buffered messages are
	// handled, outstanding acks and publishes are flushed.
	DefaultDrainTimeout = 30 * time.Second
	// Async publishes awaiting an ack before PublishAsync stalls; 4096 keeps
	// the measured 165k msg/s with bounded memory.
	DefaultPublishAsyncMaxPending = 4096
	// How long an async publish waits for its ack before failing.
	DefaultPublishAckTimeout = 10 * time.Second
	// DefaultConsumerCheckInterval is how often each subscription asks the
	// server whether its durable consumer still exists (one small request).
	DefaultConsumerCheckInterval = 5 * time.Second
	// DefaultAPIAttemptTimeout bounds each attempt at creating a stream,
	// consumer or bucket: on a cluster that is forming, the server may
	// never answer one of several simultaneous creations
	// (nats-io/nats-server#3677), and a repeat of the same request is
	// answered. Twice nats.go's own 5 s, for a slow R3 placement.
	DefaultAPIAttemptTimeout = 10 * time.Second
	// DefaultAPIAttempts is how many attempts a creation gets before its
	// error is returned (about a minute in all, with back-off).
	DefaultAPIAttempts = 5
)

const minReconnectWait = 100 * time.Millisecond

// pingInterval and deadPings: a silent server is given up after about
// 10–15 s; the cost is one PING/PONG per 5 s per connection.
const (
	pingInterval = 5 * time.Second
	deadPings    = 2
)

// Config configures [Connect]. URL and Name are required.
type Config struct {
	// URL of the NATS server(s), comma-separated, e.g. nats://nats:4222.
	URL string
	// Name identifies the client in the server's monitoring (connz), e.g.
	// the service name. Required.
	Name string
	// Logger receives the bus's logs; it is wrapped with
	// tracectx.LogHandler so every line has the trace id. Nil means
	// slog.Default().
	Logger *slog.Logger
	// Registerer receives the bus's metrics. Nil registers nothing (tests
	// must never use the global default registry).
	Registerer prometheus.Registerer
	// ConnectTimeout bounds the initial connection (and each dial). Default
	// DefaultConnectTimeout. Connect fails when the server is not reachable:
	// a service must not start half-connected.
	ConnectTimeout time.Duration
	// MaxReconnectWait caps the reconnect back-off. Once connected, the bus
	// reconnects forever. Default DefaultMaxReconnectWait.
	MaxReconnectWait time.Duration
	// DrainTimeout bounds [Bus.Close]. Default DefaultDrainTimeout.
	DrainTimeout time.Duration
	// PublishAsyncMaxPending bounds unacknowledged async publishes
	// ([Bus.PublishBatch]). Default DefaultPublishAsyncMaxPending.
	PublishAsyncMaxPending int
	// PublishAckTimeout bounds the wait for each async publish's ack.
	// Default DefaultPublishAckTimeout.
	PublishAckTimeout time.Duration
	// StreamReplicas is how many replicas the streams the bus creates itself
	// (the dead-letter stream) get: 1 on one server, 3 on a production
	// cluster. Default 1.
	StreamReplicas int
	// ConsumerCheckInterval is how often each subscription checks that its
	// durable consumer exists on the server and its pulls are served; a
	// deleted consumer is re-created and, meanwhile, the subscription is not
	// healthy (readiness fails). Default DefaultConsumerCheckInterval.
	ConsumerCheckInterval time.Duration
	// APIAttemptTimeout bounds each attempt at creating or updating a
	// stream, consumer or bucket; one that times out, or that the server
	// answers "temporarily unavailable" (no meta leader yet), is repeated
	// with back-off, up to APIAttempts in all. Defaults
	// DefaultAPIAttemptTimeout and DefaultAPIAttempts.
	APIAttemptTimeout time.Duration
	APIAttempts       int
	// NATSOptions are appended to the connection options (credentials,
	// TLS). They may override the bus's choices; use with care.
	NATSOptions []nats.Option
}

// Validate reports the first invalid field, wrapping [ErrInvalidConfig].
func (c Config) Validate() error {
	if c.URL == "" {
		return fmt.Errorf("%w: Config.URL is required (e.g. nats://127.0.0.1:4222)", ErrInvalidConfig)
	}
	if c.Name == "" {
		return fmt.Errorf("%w: Config.Name is required (the client name shown in server monitoring)", ErrInvalidConfig)
	}
	return c.validateBus()
}

// validateBus checks the fields that also apply to FromConn.
func (c Config) validateBus() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ConnectTimeout", c.ConnectTimeout},
		{"MaxReconnectWait", c.MaxReconnectWait},
		{"DrainTimeout", c.DrainTimeout},
		{"PublishAckTimeout", c.PublishAckTimeout},
		{"ConsumerCheckInterval", c.ConsumerCheckInterval},
		{"APIAttemptTimeout", c.APIAttemptTimeout},
	} {
		if d.v < 0 {
			return fmt.Errorf("%w: Config.%s is %s, must not be negative", ErrInvalidConfig, d.name, d.v)
		}
	}
	if c.PublishAsyncMaxPending < 0 {
		return fmt.Errorf("%w: Config.PublishAsyncMaxPending is %d, must not be negative", ErrInvalidConfig, c.PublishAsyncMaxPending)
	}
	if c.APIAttempts < 0 {
		return fmt.Errorf("%w: Config.APIAttempts is %d, must not be negative", ErrInvalidConfig, c.APIAttempts)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.MaxReconnectWait == 0 {
		c.MaxReconnectWait = DefaultMaxReconnectWait
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.PublishAsyncMaxPending == 0 {
		c.PublishAsyncMaxPending = DefaultPublishAsyncMaxPending
	}
	if c.ConsumerCheckInterval == 0 {
		c.ConsumerCheckInterval = DefaultConsumerCheckInterval
	}
	if c.APIAttemptTimeout == 0 {
		c.APIAttemptTimeout = DefaultAPIAttemptTimeout
	}
	if c.APIAttempts == 0 {
		c.APIAttempts = DefaultAPIAttempts
	}
	if c.PublishAckTimeout == 0 {
		c.PublishAckTimeout = DefaultPublishAckTimeout
	}
	return c
}

// Bus is a connection to NATS with JetStream, the publisher and the factory
// of subscriptions. It is safe for concurrent use.
type Bus struct {
	cfg     Config
	nc      *nats.Conn
	js      jetstream.JetStream
	log     *slog.Logger
	metrics *metrics
	owned   bool          // Close drains nc
	closed  chan struct{} // closed by nc's ClosedHandler (owned only)

	dlqOnce sync.Mutex // guards dlqDone: the DLQ stream ensured once per bus
	dlqDone bool

	mu       sync.Mutex
	subs     map[*Subscription]struct{}
	isClosed bool
}

// Connect connects to cfg.URL and returns a Bus that owns the connection.
// After the first connection succeeds the client reconnects forever with a
// capped, jittered back-off; [Bus.Close] drains and closes it.
func Connect(ctx context.Context, cfg Config) (*Bus, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	log := slog.New(tracectx.LogHandler(cfg.Logger.Handler())).With("component", "bus")
	closed := make(chan struct{})
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.Timeout(cfg.ConnectTimeout),
		nats.MaxReconnects(-1), // forever: a service without its bus is useless, and exiting would not help
		nats.CustomReconnectDelay(reconnectDelay(cfg.MaxReconnectWait)),
		nats.DrainTimeout(cfg.DrainTimeout),
		// A node that vanishes without closing the connection (its host
		// lost, a network partition) is noticed after deadPings pings, not
		// nats.go's 2 min × 2: the reconnect to a live node, and every
		// request and pull waiting on it, would wait that long.
		nats.PingInterval(pingInterval),
		nats.MaxPingsOutstanding(deadPings),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "error", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				log.Error("nats async error", "subject", sub.Subject, "error", err)
				return
			}
			log.Error("nats async error", "error", err)
		}),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }),
	}
	opts = append(opts, cfg.NATSOptions...)

	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(cfg.URL, opts...)
		done <- result{nc, err}
	}()
	var nc *nats.Conn
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("bus: connecting to %s: %w", cfg.URL, r.err)
		}
		nc = r.nc
	case <-ctx.Done():
		go func() { // the dial is bounded by ConnectTimeout; close whatever it yields
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, fmt.Errorf("bus: connecting to %s: %w", cfg.URL, ctx.Err())
	}
	b, err := newBus(nc, cfg, log)
	if err != nil {
		nc.Close()
		return nil, err
	}
	b.owned = true
	b.closed = closed
	return b, nil
}

// FromConn returns a Bus on a connection the caller owns: [Bus.Close] stops
// the bus's subscriptions and waits for its publishes but leaves nc open.
// cfg's connection fields (URL, Name, ConnectTimeout, MaxReconnectWait,
// NATSOptions) are ignored.
func FromConn(nc *nats.Conn, cfg Config) (*Bus, error) {
	if nc == nil {
		return nil, fmt.Errorf("%w: nil connection", ErrInvalidConfig)
	}
	if err := cfg.validateBus(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	log := slog.New(tracectx.LogHandler(cfg.Logger.Handler())).With("component", "bus")
	return newBus(nc, cfg, log)
}

func newBus(nc *nats.Conn, cfg Config, log *slog.Logger) (*Bus, error) {
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(cfg.PublishAsyncMaxPending),
		jetstream.WithPublishAsyncTimeout(cfg.PublishAckTimeout),
	)
	if err != nil {
		return nil, fmt.Errorf("bus: creating JetStream context: %w", err)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Bus{
		cfg:     cfg,
		nc:      nc,
		js:      js,
		log:     log,
		metrics: m,
		subs:    make(map[*Subscription]struct{}),
	}, nil
}

// reconnectDelay doubles from minReconnectWait up to maxWait, then adds up to
// 20 % jitter.
func reconnectDelay(maxWait time.Duration) nats.ReconnectDelayHandler {
	return func(attempts int) time.Duration {
		d := minReconnectWait
		for i := 1; i < attempts && d < maxWait; i++ {
			d *= 2
		}
		d = min(d, maxWait)
		return d + rand.N(d/5+1)
	}
}

// Conn returns the underlying connection (for request/reply or monitoring).
func (b *Bus) Conn() *nats.Conn { return b.nc }

// JetStream returns the JetStream context (for key-value buckets and the
// rare raw publish). Prefer the typed methods.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Close stops every subscription of the bus (draining in-flight handlers),
// waits for outstanding async publishes and, when the bus owns the
// connection ([Connect]), drains and closes it; all within
// Config.DrainTimeout. Calling it again is a no-op.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.isClosed {
		b.mu.Unlock()
		return nil
	}
	b.isClosed = true
	subs := make([]*Subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.DrainTimeout)
	defer cancel()
	var errs []error
	for _, s := range subs {
		if err := s.Stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	select {
	case <-b.js.PublishAsyncComplete():
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("bus: %d async publishes still unacknowledged at close", b.js.PublishAsyncPending()))
	}
	if !b.owned {
		return errors.Join(errs...)
	}
	if err := b.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		errs = append(errs, fmt.Errorf("bus: draining connection: %w", err))
		b.nc.Close()
	}
	select {
	case <-b.closed:
	case <-ctx.Done():
		b.nc.Close()
		errs = append(errs, fmt.Errorf("bus: connection drain: %w", ctx.Err()))
	}
	return errors.Join(errs...)
}

func (b *Bus) addSub(s *Subscription) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.isClosed {
		return ErrClosed
	}
	b.subs[s] = struct{}{}
	return nil
}

func (b *Bus) removeSub(s *Subscription) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.subs, s)
}
