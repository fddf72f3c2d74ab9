// Package reminders sends Slack reminders of CRM calendar activities
// (events, tasks, calls), on time and exactly once. Run is its in-process
// entry point, used by cmd/reminders, the local runner and tests.
//
// It consumes the CRM's crm.v1.Activity{Scheduled,Updated,Cancelled,
// Completed} events, keeps each activity's latest state in the
// reminder_activities bucket, and sets one timer per reminder as a
// JetStream message schedule on the REMINDERS stream, which the server
// fires into reminders.v1.<org>.due. A fired reminder is checked against
// the activity's current state and the user's preferences, rendered and
// sent as a DM to the egress (slack.out.v1.<org>.<team>.post) under an
// idempotency key of activity, version, offset and user. It serves
// reminders.v1.ReminderPreferencesService over gRPC and answers the
// reminder's Snooze and Mark done buttons (slack.v1.InteractionReceived);
// Mark done asks the CRM to close the task with
// crm.v1.CompleteActivityRequested on crm.v1.<org>.command.activity.complete.
package reminders

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/libs/lifecycle"
	"github.com/crmslack/crmslack/libs/orgaccess"
	"github.com/crmslack/crmslack/libs/rpc"
	"github.com/crmslack/crmslack/libs/store"
	"github.com/crmslack/crmslack/libs/topology"

	"github.com/crmslack/crmslack/services/reminders/internal/access"
	"github.com/crmslack/crmslack/services/reminders/internal/activitykv"
	"github.com/crmslack/crmslack/services/reminders/internal/app"
	"github.com/crmslack/crmslack/services/reminders/internal/grpcapi"
	"github.com/crmslack/crmslack/services/reminders/internal/inbound"
	"github.com/crmslack/crmslack/services/reminders/internal/prefs"
	"github.com/crmslack/crmslack/services/reminders/internal/timers"
)

// Config is the service's configuration. Each field names its variable and
// default.
type Config struct {
	// NATSURL is NATS_URL: the NATS server(s). Default nats://127.0.0.1:4222.
	NATSURL string
	// NATSReplicas is NATS_REPLICAS: replicas of the streams and buckets
	// this service ensures. Default 1.
	NATSReplicas int
	// MongoURI is MONGODB_URI. Default mongodb://127.0.0.1:27017.
	MongoURI string
	// Database is REMINDERS_MONGODB_DATABASE, the preferences' database.
	// Default "reminders".
	Database string
	// GRPCAddr is REMINDERS_GRPC_ADDR, where ReminderPreferencesService
	// listens. Default 127.0.0.1:9105.
	GRPCAddr string
	// OpsAddr is REMINDERS_OPS_ADDR, serving /healthz, /readyz and
	// /metrics. Default 127.0.0.1:9205.
	OpsAddr string
	// CRMBaseURL is CRM_BASE_URL: "Open in CRM" of an activity without a
	// URL of its own is <it>/Activities/<id>. Empty (the default): no link.
	CRMBaseURL string
	// Snooze is REMINDERS_SNOOZE: how long "Snooze" waits. Default 10m.
	Snooze time.Duration
	// LateAfter is REMINDERS_LATE_AFTER: a reminder handled longer than
	// this after its due time (the service or NATS was down) is late: sent
	// marked late if the activity has not started, else dropped and
	// counted. Default 1m.
	LateAfter time.Duration

	// Ready, not from the environment, is called once the service serves,
	// with the addresses it bound (tests listen on port 0).
	Ready func(Addrs)
	// Now, not from the environment, is the clock. Default time.Now.
	Now func() time.Time
	// Storage, not from the environment, is the streams' and buckets'
	// storage: file (the default) unless a benchmark asks for memory.
	Storage jetstream.StorageType
}

// Addrs are the bound listen addresses.
type Addrs struct {
	GRPC, Ops string
}

// ConfigFromEnv reads the configuration; problems are recorded in l.
func ConfigFromEnv(l *envconfig.Loader) Config {
	return Config{
		NATSURL:      l.String("NATS_URL", "nats://127.0.0.1:4222"),
		NATSReplicas: l.Int("NATS_REPLICAS", 1, 1, 5),
		MongoURI:     l.String("MONGODB_URI", "mongodb://127.0.0.1:27017"),
		Database:     l.String("REMINDERS_MONGODB_DATABASE", "reminders"),
		GRPCAddr:     l.String("REMINDERS_GRPC_ADDR", "127.0.0.1:9105"),
		OpsAddr:      l.String("REMINDERS_OPS_ADDR", "127.0.0.1:9205"),
		CRMBaseURL:   l.URL("CRM_BASE_URL", "", "http", "https"),
		Snooze:       l.Duration("REMINDERS_SNOOZE", 10*time.Minute, time.Second, 24*time.Hour),
		LateAfter:    l.Duration("REMINDERS_LATE_AFTER", time.Minute, time.Second, 24*time.Hour),
	}
}

// Validate reports every invalid field by its variable name.
func (c Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	if c.NATSURL == "" {
		bad("NATS_URL", "required")
	}
	if c.NATSReplicas < 1 {
		bad("NATS_REPLICAS", "must be at least 1")
	}
	if err := (store.Config{URI: c.MongoURI, Database: c.Database}).Validate(); err != nil {
		bad("MONGODB_URI/REMINDERS_MONGODB_DATABASE", "%v", err)
	}
	for name, addr := range map[string]string{"REMINDERS_GRPC_ADDR": c.GRPCAddr, "REMINDERS_OPS_ADDR": c.OpsAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad(name, "%q is not host:port", addr)
		}
	}
	if c.CRMBaseURL != "" {
		if u, err := url.Parse(c.CRMBaseURL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			bad("CRM_BASE_URL", "%q is not an http(s) URL", c.CRMBaseURL)
		}
	}
	if c.Snooze <= 0 {
		bad("REMINDERS_SNOOZE", "must be positive")
	}
	if c.LateAfter <= 0 {
		bad("REMINDERS_LATE_AFTER", "must be positive")
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// busPublisher adapts bus.Bus to app.Publisher.
type busPublisher struct{ b *bus.Bus }

func (p busPublisher) Publish(ctx context.Context, subject string, ev bus.Event) error {
	_, err := p.b.Publish(ctx, subject, ev)
	return err
}

// Run runs the service until ctx ends; a clean stop returns nil.
func Run(ctx context.Context, cfg Config, log *slog.Logger, reg prometheus.Registerer) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("reminders configuration: %w", err)
	}
	log = log.With("service", "reminders")
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	storage := cfg.Storage

	db, err := store.Open(ctx, store.Config{URI: cfg.MongoURI, Database: cfg.Database, AppName: "reminders"})
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = db.Close(cctx)
	}()

	b, err := bus.Connect(ctx, bus.Config{URL: cfg.NATSURL, Name: "reminders", Logger: log, Registerer: reg, StreamReplicas: cfg.NATSReplicas})
	if err != nil {
		return err
	}
	defer func() {
		if err := b.Close(); err != nil {
			log.Warn("closing the bus", "err", err)
		}
	}()
	opts := topology.StreamOptions{Replicas: cfg.NATSReplicas, Storage: storage}
	if err := b.EnsureStreams(ctx, topology.Select(opts,
		topology.StreamCRM, topology.StreamSlackIn, topology.StreamSlackOut, topology.StreamReminders)...); err != nil {
		return err
	}
	js := b.JetStream()
	acts, err := activitykv.Ensure(ctx, js, cfg.NATSReplicas, storage)
	if err != nil {
		return err
	}
	tms, err := timers.New(ctx, js)
	if err != nil {
		return err
	}
	prefStore, err := prefs.New(ctx, db.DB(), js, cfg.NATSReplicas, storage)
	if err != nil {
		return err
	}
	m, err := newMetrics(reg)
	if err != nil {
		return err
	}
	view := prefs.NewView()
	teams := access.New()
	svc := app.New(app.Config{CRMBaseURL: cfg.CRMBaseURL, Snooze: cfg.Snooze, LateAfter: cfg.LateAfter, Now: cfg.Now},
		app.Deps{Activities: acts, Timers: tms, Preferences: view, PrefStore: prefStore, Access: teams, Publisher: busPublisher{b}, Metrics: m}, log)

	if n, err := prefStore.Sync(ctx, view.Get); err != nil {
		log.WarnContext(ctx, "copying preferences to their bucket incomplete", "copied", n, "err", err)
	}
	followCtx, stopFollowing := context.WithCancel(ctx)
	defer stopFollowing()
	go func() { _ = prefs.Follow(followCtx, prefStore.KV(), view, log) }()
	go func() { _ = orgaccess.Follow(followCtx, js, teams, time.Second, log) }()
	// Fired reminders wait until this replica knows every user's choice
	// and every org's teams: deciding without them would drop reminders.
	deadline := time.Now().Add(30 * time.Second)
	for !view.Synced() || !teams.Synced() {
		if time.Now().After(deadline) {
			return errors.New("preferences or org access not loaded within 30s (is the team registry up?)")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(10 * time.Millisecond):
		}
	}

	subs, err := inbound.Subscribe(ctx, b, svc)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lifecycle.ShutdownTimeout)
		defer cancel()
		for _, s := range subs {
			if err := s.Stop(sctx); err != nil {
				log.Warn("stopping a consumer", "err", err)
			}
		}
	}()

	grpcLis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("REMINDERS_GRPC_ADDR %s: %w", cfg.GRPCAddr, err)
	}
	opsLis, err := net.Listen("tcp", cfg.OpsAddr)
	if err != nil {
		_ = grpcLis.Close()
		return fmt.Errorf("REMINDERS_OPS_ADDR %s: %w", cfg.OpsAddr, err)
	}
	gs := rpc.NewServer(log)
	grpcapi.Register(gs, grpcapi.New(svc))

	var ready lifecycle.Readiness
	ready.AddCheck(db.Ping)
	ready.AddCheck(func(context.Context) error {
		if !b.Conn().IsConnected() {
			return errors.New("NATS disconnected")
		}
		return nil
	})
	gatherer, ok := reg.(prometheus.Gatherer)
	if !ok {
		gatherer = prometheus.NewRegistry()
	}
	ops := &http.Server{Handler: lifecycle.OpsHandler(&ready, gatherer), ReadHeaderTimeout: 5 * time.Second}

	ready.MarkReady(true)
	defer ready.MarkReady(false)
	log.InfoContext(ctx, "reminders serving", "grpc", grpcLis.Addr().String(), "ops", opsLis.Addr().String())
	if cfg.Ready != nil {
		cfg.Ready(Addrs{GRPC: grpcLis.Addr().String(), Ops: opsLis.Addr().String()})
	}
	return lifecycle.Run(ctx, log,
		gs.Part("grpc", grpcLis),
		lifecycle.HTTPServer("ops", ops, opsLis),
	)
}
