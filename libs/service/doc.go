// Package service is the one skeleton every crmslack service runs on. A
// service declares what it is and what it needs in a [Spec]; [Run] opens
// those things in order, lets the service wire its core on them, serves,
// and closes everything in reverse order on the way out. Readiness,
// /metrics and shutdown therefore behave the same in every service, and a
// fix to any of them lands here once.
//
// # What Run does, in order
//
//  1. Validates the configuration (Spec.Config); an invalid one is an error
//     naming the variable, before anything is opened.
//  2. Checks the metrics registry can be gathered: /metrics from a registry
//     that cannot be gathered would answer 200 with an empty page, so that
//     is an error, never a fallback. A nil Spec.Registry gets a fresh one.
//  3. Opens the store (Spec.Store: database, then its indexes), then the bus
//     (Spec.Bus: connect, then the streams it names). Each adds a readiness
//     check (ping, connected) and a closer. Every consumer registered with
//     [Runtime.Consumer] is part of readiness too: a durable deleted on the
//     server fails /readyz until libs/bus has re-created it.
//  4. Calls Spec.Build with a [Runtime]: the service builds its plain core
//     on the store and bus, registers its gRPC services on [Runtime.GRPC],
//     hands over its HTTP servers ([Runtime.HTTP]), starts its consumers
//     and registers them with [Runtime.Consumer], dials the services it calls
//     ([Runtime.Dial]) and adds long-running parts ([Runtime.Part]: watchers,
//     tickers) and readiness checks ([Runtime.Check]).
//  5. Binds every listener (or takes the one passed in Spec.Listeners, so
//     tests bind port 0 themselves and know the address before the service
//     starts), serves /healthz, /readyz and /metrics on the "ops" listener.
//  6. Marks the service ready and calls Spec.Ready with the bound addresses,
//     unless the service holds readiness back ([Runtime.HoldReady]) until
//     its own start-up work is done (a projection rebuilt, say).
//  7. Runs the servers and parts until ctx ends or one fails (the first
//     failure stops the rest and is Run's error), then marks the service not
//     ready and closes in reverse order: servers (gracefully), consumers
//     (drained), clients, bus, store.
//
// # Shape of a service
//
// A service package keeps three things at its top: a Config embedding
// [Connections] (trust, bus, database, listeners: read and checked once,
// here) plus its own fields, each naming its variable and default; its
// [Vars]; and a Run of a few lines:
//
//	var vars = service.Vars{Prefix: "TEAMS", Database: "teams", GRPCAddr: "127.0.0.1:9101", OpsAddr: "127.0.0.1:9201"}
//
//	func ConfigFromEnv(l *envconfig.Loader) Config {
//		return Config{Connections: vars.FromEnv(l), TokenKeys: l.Required("TEAMS_TOKEN_KEYS")}
//	}
//
//	func (c Config) Validate() error {
//		var p envconfig.Problems
//		vars.Check(&p, c.Connections)
//		// ... the service's own fields
//		return p.Err()
//	}
//
//	func Run(ctx context.Context, cfg Config, log *slog.Logger, reg prometheus.Registerer) error {
//		return service.Run(ctx, service.Spec{
//			Name: "teams", Config: cfg, Log: log, Registry: reg, Vars: vars,
//			Store: &service.Store{Indexes: mongorepo.Indexes()},
//			Bus:   &service.Bus{Streams: []string{topology.StreamIntegration}},
//			Build: func(ctx context.Context, rt *service.Runtime) error { return build(ctx, cfg, rt) },
//			Ready: service.ReadyAddrs(cfg.Ready),
//		})
//	}
//
// The same Run serves cmd/<service> (through lifecycle.Main) and the local
// runner; docs/services.md walks through a whole service.
package service
