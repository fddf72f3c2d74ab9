package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/lifecycle"
	"github.com/crmslack/crmslack/libs/mtls"
	"github.com/crmslack/crmslack/libs/rpc"
	"github.com/crmslack/crmslack/libs/store"
	"github.com/crmslack/crmslack/libs/topology"
	"github.com/crmslack/crmslack/libs/trust"
)

// Listener names: the keys of [Bound] and [Listeners] for the listeners the
// skeleton itself knows.
const (
	ListenerOps  = "ops"
	ListenerGRPC = "grpc"
)

// Spec declares a service: what it is and what it needs.
type Spec struct {
	// Name is the service's name, used in logs, errors, the bus connection
	// name and the database's app name. Required.
	Name string
	// Config is the service's configuration, validated before anything is
	// opened. Required.
	Config lifecycle.Config
	// Log is the logger; every line gets service=Name. Required.
	Log *slog.Logger
	// Registry receives the service's metrics and is served on /metrics. It
	// must also be a prometheus.Gatherer (a *prometheus.Registry is both);
	// nil means a fresh one (lifecycle.NewRegistry).
	Registry prometheus.Registerer

	// Store, if set, is the service's own database.
	Store *Store
	// Bus, if set, is the NATS connection and the streams the service uses.
	Bus *Bus
	// GRPC, if set, is where the service's gRPC server listens; its name is
	// ListenerGRPC.
	GRPC *Listen
	// HTTP are further HTTP listeners (not ops); each needs a server from
	// [Runtime.HTTP] in Build.
	HTTP []Listen
	// Ops is where /healthz, /readyz and /metrics are served; its name is
	// ListenerOps. Required.
	Ops Listen
	// Listeners are listeners bound by the caller, by listener name; they
	// are used instead of binding the configured address, and closed by Run.
	Listeners Listeners
	// Vars, if its Prefix is set, says the Config embeds [Connections]
	// (the usual way): Run then takes from them the store's URI and
	// database (when Vars.Database is set), the bus's URL and replicas, the
	// gRPC listener (when Vars.GRPCAddr is set), the ops listener and the
	// listeners passed in. Store and Bus then declare only what is the
	// service's own: indexes, streams.
	Vars Vars

	// Build wires the service on what Run opened. Required.
	Build func(ctx context.Context, rt *Runtime) error
	// Ready, if set, is called once the service is ready, with the bound
	// addresses (tests listen on port 0).
	Ready func(Bound)
}

// Store declares the service's database.
type Store struct {
	// Config opens it; AppName defaults to the service's name.
	Config store.Config
	// Indexes are created at start-up.
	Indexes []store.IndexSpec
}

// Bus declares the NATS connection and the streams the service uses.
type Bus struct {
	// URL is the NATS server(s).
	URL string
	// Replicas is the replica count of the streams (and buckets) created.
	Replicas int
	// Streams are the shared streams the service uses, by topology name
	// (topology.StreamCRM, ...); each is ensured at start-up.
	Streams []string
	// Own are streams only this service defines, ensured after Streams.
	Own []jetstream.StreamConfig
	// ConsumerCheckInterval is how often each consumer checks it still
	// exists on the server (see bus.Config). Zero means the bus default.
	ConsumerCheckInterval time.Duration
}

// Listen is one listener: its address and the variable that set it (for
// errors).
type Listen struct {
	// Name is the listener's name (only for Spec.HTTP; GRPC and Ops have
	// theirs).
	Name string
	// Addr is host:port to bind.
	Addr string
	// Var is the environment variable Addr came from, named in errors.
	Var string
}

// Listeners are listeners bound by the caller, by listener name.
type Listeners map[string]net.Listener

// Bound are the bound addresses, by listener name.
type Bound map[string]string

// Consumer is a running consumer (a *bus.Subscription): stopped, drained,
// on the way out. One that also has Healthy() error is part of readiness.
type Consumer interface {
	Stop(ctx context.Context) error
}

// healthy is implemented by consumers that can say they are receiving.
type healthy interface{ Healthy() error }

// closeTimeout bounds each closer on the way out.
const closeTimeout = lifecycle.ShutdownTimeout

// Run runs the service declared by spec until ctx ends; a clean stop
// returns nil. See the package documentation for the order of things.
func Run(ctx context.Context, spec Spec) error {
	spec.Listeners = maps.Clone(spec.Listeners) // served ones are taken out
	connErr := spec.fromConnections()
	defer func() {
		// Listeners passed in and not served (Run failed first) are ours
		// to close too; served ones their server closes.
		for _, l := range spec.Listeners {
			_ = l.Close()
		}
	}()
	if err := spec.check(); err != nil {
		return err
	}
	if connErr != nil {
		return connErr
	}
	if err := spec.Config.Validate(); err != nil {
		return fmt.Errorf("%s configuration: %w", spec.Name, err)
	}
	trusted, err := loadTrust(spec)
	if err != nil {
		return err
	}
	log := spec.Log.With("service", spec.Name)
	reg := spec.Registry
	if reg == nil {
		reg = lifecycle.NewRegistry()
	}
	gatherer, ok := reg.(prometheus.Gatherer)
	if !ok {
		return fmt.Errorf("%s: metrics: the registry (%T) cannot be gathered, so /metrics would be empty: pass a *prometheus.Registry", spec.Name, reg)
	}

	rt := &Runtime{spec: &spec, log: log, reg: reg, servers: map[string]*http.Server{}, holds: holds{n: 1}, identity: trusted.Identity, natsLogin: trusted.NATS}
	defer rt.closeAll(ctx)
	if err := rt.open(ctx); err != nil {
		return err
	}
	if spec.GRPC != nil {
		if rt.grpc, err = rpc.NewServer(log, rpc.Security{Identity: trusted.Identity, CRMKeys: trusted.CRMKeys, Registerer: reg}); err != nil {
			return fmt.Errorf("%s: %w", spec.Name, err)
		}
	}
	if err := spec.Build(ctx, rt); err != nil {
		return err
	}

	parts, bound, err := rt.listen(gatherer)
	if err != nil {
		return err
	}
	rt.bound = bound
	defer rt.ready.MarkReady(false)
	rt.release() // Build's own hold, if nothing else holds readiness back
	return lifecycle.Run(ctx, log, append(parts, rt.parts...)...)
}

// loadTrust loads the service's trust files from its Config (which embeds
// trust.Files): no service runs unauthenticated.
func loadTrust(spec Spec) (trust.Loaded, error) {
	t, ok := spec.Config.(interface{ TrustFiles() trust.Files })
	if !ok {
		return trust.Loaded{}, fmt.Errorf("%s: its Config (%T) embeds no trust.Files: every service authenticates its peers (libs/trust)", spec.Name, spec.Config)
	}
	loaded, err := t.TrustFiles().Load(spec.GRPC != nil, spec.Bus != nil)
	if err != nil {
		return trust.Loaded{}, fmt.Errorf("%s configuration: %w", spec.Name, err)
	}
	return loaded, nil
}

func (s *Spec) check() error {
	var missing []string
	if s.Name == "" {
		missing = append(missing, "Name")
	}
	if s.Config == nil {
		missing = append(missing, "Config")
	}
	if s.Log == nil {
		missing = append(missing, "Log")
	}
	if s.Build == nil {
		missing = append(missing, "Build")
	}
	if len(missing) > 0 {
		return fmt.Errorf("service: Spec %q lacks %v", s.Name, missing)
	}
	return nil
}

// open opens the store, then the bus.
func (rt *Runtime) open(ctx context.Context) error {
	spec := rt.spec
	if spec.Store != nil {
		cfg := spec.Store.Config
		if cfg.AppName == "" {
			cfg.AppName = spec.Name
		}
		db, err := store.Open(ctx, cfg)
		if err != nil {
			return err
		}
		rt.onClose("store", db.Close)
		if err := db.EnsureIndexes(ctx, spec.Store.Indexes); err != nil {
			return err
		}
		rt.Store = db
		rt.Check(db.Ping)
	}
	if spec.Bus != nil {
		opts := topology.StreamOptions{Replicas: spec.Bus.Replicas, Storage: jetstream.FileStorage}
		streams := topology.Select(opts, spec.Bus.Streams...)
		b, err := bus.Connect(ctx, bus.Config{
			URL: spec.Bus.URL, Name: spec.Name, Logger: rt.log, Registerer: rt.reg, StreamReplicas: spec.Bus.Replicas,
			ConsumerCheckInterval: spec.Bus.ConsumerCheckInterval,
			NATSOptions:           rt.natsLogin,
		})
		if err != nil {
			return err
		}
		rt.onClose("bus", func(context.Context) error { return b.Close() })
		if err := b.EnsureStreams(ctx, append(streams, spec.Bus.Own...)...); err != nil {
			return err
		}
		rt.Bus = b
		rt.Check(func(context.Context) error {
			if !b.Conn().IsConnected() {
				return errors.New("NATS disconnected")
			}
			return nil
		})
	}
	return nil
}

// listen binds every declared listener and makes the servers' parts.
func (rt *Runtime) listen(gatherer prometheus.Gatherer) ([]lifecycle.Part, Bound, error) {
	spec := rt.spec
	type want struct {
		Listen
		part func(net.Listener) lifecycle.Part
	}
	var wants []want
	if spec.GRPC != nil {
		l := *spec.GRPC
		l.Name = ListenerGRPC
		wants = append(wants, want{l, func(lis net.Listener) lifecycle.Part { return rt.grpc.Part(ListenerGRPC, lis) }})
	}
	for _, l := range spec.HTTP {
		srv, ok := rt.servers[l.Name]
		if !ok {
			return nil, nil, fmt.Errorf("%s: HTTP listener %q has no server (call Runtime.HTTP in Build)", spec.Name, l.Name)
		}
		wants = append(wants, want{l, func(lis net.Listener) lifecycle.Part { return lifecycle.HTTPServer(l.Name, srv, lis) }})
	}
	for name := range rt.servers {
		if !slices.ContainsFunc(spec.HTTP, func(l Listen) bool { return l.Name == name }) {
			return nil, nil, fmt.Errorf("%s: Runtime.HTTP(%q): no such listener in Spec.HTTP", spec.Name, name)
		}
	}
	ops := spec.Ops
	ops.Name = ListenerOps
	opsSrv := &http.Server{Handler: lifecycle.OpsHandler(&rt.ready, gatherer), ReadHeaderTimeout: 5 * time.Second}
	wants = append(wants, want{ops, func(lis net.Listener) lifecycle.Part { return lifecycle.HTTPServer(ListenerOps, opsSrv, lis) }})

	var parts []lifecycle.Part
	bound := Bound{}
	var lisList []net.Listener
	for _, w := range wants {
		lis, ok := spec.Listeners[w.Name]
		if ok {
			delete(spec.Listeners, w.Name) // served (and closed) by its server from now on
		} else {
			var err error
			if lis, err = net.Listen("tcp", w.Addr); err != nil {
				for _, l := range lisList {
					_ = l.Close()
				}
				return nil, nil, fmt.Errorf("%s %s: %w", w.Var, w.Addr, err)
			}
		}
		lisList = append(lisList, lis)
		bound[w.Name] = lis.Addr().String()
		parts = append(parts, w.part(lis))
	}
	return parts, bound, nil
}

// Runtime is what Build wires the service with. Its methods may be called
// only during Build, except the release function of [Runtime.HoldReady].
type Runtime struct {
	// Store is the service's database; nil unless Spec.Store is set.
	Store *store.Store
	// Bus is the NATS connection; nil unless Spec.Bus is set.
	Bus *bus.Bus

	spec    *Spec
	log     *slog.Logger
	reg     prometheus.Registerer
	grpc    *rpc.Server
	servers map[string]*http.Server
	parts   []lifecycle.Part
	closers []closer
	ready   lifecycle.Readiness
	bound   Bound
	holds   holds

	identity  *mtls.Identity
	natsLogin []nats.Option
}

type closer struct {
	name string
	fn   func(context.Context) error
}

// Log is the service's logger (with service=<name>).
func (rt *Runtime) Log() *slog.Logger { return rt.log }

// Registry receives the service's metrics.
func (rt *Runtime) Registry() prometheus.Registerer { return rt.reg }

// GRPC is the service's gRPC server, to register services on; nil unless
// Spec.GRPC is set.
func (rt *Runtime) GRPC() *rpc.Server { return rt.grpc }

// HTTP hands over the server of the HTTP listener name (declared in
// Spec.HTTP). Run serves it and shuts it down gracefully.
func (rt *Runtime) HTTP(name string, srv *http.Server) { rt.servers[name] = srv }

// Part adds a long-running part (a watcher, a ticker loop). It runs with
// the servers; returning an error stops the service.
func (rt *Runtime) Part(name string, run func(ctx context.Context) error) {
	rt.parts = append(rt.parts, lifecycle.Part{Name: name, Run: run})
}

// Check adds a readiness check: /readyz fails while it does.
func (rt *Runtime) Check(check func(context.Context) error) { rt.ready.AddCheck(check) }

// Consumer registers a running consumer: stopped (drained) on the way out,
// before the bus closes, and part of readiness if it can tell its health.
func (rt *Runtime) Consumer(name string, c Consumer) {
	rt.onClose("consumer "+name, c.Stop)
	if h, ok := c.(healthy); ok {
		rt.Check(func(context.Context) error { return h.Healthy() })
	}
}

// Identity is the service's TLS identity (libs/mtls), for clients the
// skeleton does not make itself.
func (rt *Runtime) Identity() *mtls.Identity { return rt.identity }

// NATSLogin are the options that log a further NATS connection of the
// service in as its user (NATS_USER, NATS_PASSWORD).
func (rt *Runtime) NATSLogin() []nats.Option { return rt.natsLogin }

// Dial connects to another service's gRPC API (through libs/rpc, over
// mutual TLS as this service, accepting only a server that proves it is
// service) and closes the connection on the way out. variable names the
// target's setting in errors.
func (rt *Runtime) Dial(variable, target, service string) (*grpc.ClientConn, error) {
	cc, err := rpc.Dial(target, service, rt.identity)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", variable, err)
	}
	rt.onClose("client "+variable, func(context.Context) error { return cc.Close() })
	return cc, nil
}

// OnClose adds a closer, run on the way out in reverse order of adding and
// before the bus and store close.
func (rt *Runtime) OnClose(name string, fn func(context.Context) error) { rt.onClose(name, fn) }

func (rt *Runtime) onClose(name string, fn func(context.Context) error) {
	rt.closers = append(rt.closers, closer{name, fn})
}

// closeAll runs the closers in reverse order, each bounded by closeTimeout.
func (rt *Runtime) closeAll(ctx context.Context) {
	for i := len(rt.closers) - 1; i >= 0; i-- {
		c := rt.closers[i]
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), closeTimeout)
		if err := c.fn(cctx); err != nil {
			rt.log.Warn("closing", "part", c.name, "err", err)
		}
		cancel()
	}
}

// Addrs are the bound addresses of a service with a gRPC API: what its
// Config.Ready callback receives (services alias it: type Addrs = service.Addrs).
type Addrs struct {
	GRPC, Ops string
}

// ReadyAddrs adapts such a callback to Spec.Ready; nil stays nil.
func ReadyAddrs(ready func(Addrs)) func(Bound) {
	if ready == nil {
		return nil
	}
	return func(b Bound) { ready(Addrs{GRPC: b[ListenerGRPC], Ops: b[ListenerOps]}) }
}
