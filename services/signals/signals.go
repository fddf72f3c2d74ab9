// Package signals sends SalesSignals to Slack: when a customer reaches out
// (a missed call, a chat, an email, a ticket ...), the record owner gets a
// DM in Slack if the org's settings matrix ticks that channel and signal
// type. Run is its in-process entry point, used by cmd/signals, the local
// runner and tests.
//
// It serves signals.v1.SalesSignalsSettingsService over gRPC (the matrix,
// the default team and each owner's team; changes by admins only), keeps
// the settings in the signals_settings bucket and every org's matrix in
// memory, consumes crm.v1.SalesSignal (crm.v1.<org>.signal.<channel>),
// finds the owner's Slack account by email through the team registry's
// directory, and asks the egress to post the message
// (slack.out.v1.<org>.<team>.post). Signals from one customer to one owner
// within the storm window become one message, updated in place
// (slack.out.v1.<org>.<team>.update) once the egress reported where the
// first one landed (integration.v1.<org>.delivery.succeeded). Owners
// without Slack are counted and reported once
// (integration.v1.<org>.signals.owner_unreachable).
package signals

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/libs/identity"
	"github.com/crmslack/crmslack/libs/orgaccess"
	"github.com/crmslack/crmslack/libs/service"
	"github.com/crmslack/crmslack/libs/topology"

	"github.com/crmslack/crmslack/services/signals/internal/access"
	"github.com/crmslack/crmslack/services/signals/internal/app"
	"github.com/crmslack/crmslack/services/signals/internal/grpcapi"
	"github.com/crmslack/crmslack/services/signals/internal/inbound"
	"github.com/crmslack/crmslack/services/signals/internal/owners"
	"github.com/crmslack/crmslack/services/signals/internal/render"
	"github.com/crmslack/crmslack/services/signals/internal/settingskv"
	"github.com/crmslack/crmslack/services/signals/internal/statekv"
)

// Config is the service's configuration. Each field names its variable and
// default.
type Config struct {
	// Connections are the trust files, NATS_URL, NATS_REPLICAS (of the
	// streams and buckets it ensures), SIGNALS_GRPC_ADDR
	// (SalesSignalsSettingsService, default 127.0.0.1:9107) and
	// SIGNALS_OPS_ADDR (default 127.0.0.1:9207); see libs/service. It keeps
	// no database: its state is in JetStream buckets.
	service.Connections
	// TeamsAddr is TEAMS_ADDR, the team registry's gRPC address
	// (ListDirectory). Default 127.0.0.1:9101.
	TeamsAddr string
	// CRMBaseURL is CRM_BASE_URL, the CRM's web UI: "Open in CRM" is
	// <it>/<module>/<id>. Empty (the default): no such button.
	CRMBaseURL string
	// Window is SIGNALS_STORM_WINDOW: signals from one customer to one
	// owner within it become one message. Default 2m.
	Window time.Duration
	// DirectoryTTL is SIGNALS_DIRECTORY_TTL: how long a team's directory is
	// kept to find owners in. Default 30s.
	DirectoryTTL time.Duration
	// Lanes is SIGNALS_LANES: signals of different owners handled at once
	// (each owner's one at a time, in order). Default 16.
	Lanes int

	// Ready, not from the environment, is called once the service serves,
	// with the addresses it bound (tests listen on port 0).
	Ready func(Addrs)
	// Now, not from the environment, is the clock. Default time.Now.
	Now func() time.Time
}

// Addrs are the bound listen addresses.
type Addrs = service.Addrs

// vars are the service's own connection variables and their defaults.
var vars = service.Vars{Prefix: "SIGNALS", GRPCAddr: "127.0.0.1:9107", OpsAddr: "127.0.0.1:9207"}

// ConfigFromEnv reads the configuration; problems are recorded in l.
func ConfigFromEnv(l *envconfig.Loader) Config {
	return Config{
		Connections:  vars.FromEnv(l),
		TeamsAddr:    l.String("TEAMS_ADDR", "127.0.0.1:9101"),
		CRMBaseURL:   l.URL("CRM_BASE_URL", "", "http", "https"),
		Window:       l.Duration("SIGNALS_STORM_WINDOW", 2*time.Minute, time.Second, time.Hour),
		DirectoryTTL: l.Duration("SIGNALS_DIRECTORY_TTL", owners.DefaultTTL, time.Second, time.Hour),
		Lanes:        l.Int("SIGNALS_LANES", 16, 1, 1024),
	}
}

// Validate reports every invalid field by its variable name.
func (c Config) Validate() error {
	var p envconfig.Problems
	vars.Check(&p, c.Connections)
	p.HostPort(map[string]string{"TEAMS_ADDR": c.TeamsAddr})
	if c.CRMBaseURL != "" {
		p.HTTPURL(map[string]string{"CRM_BASE_URL": c.CRMBaseURL})
	}
	p.Positive("SIGNALS_STORM_WINDOW", int64(c.Window))
	p.Positive("SIGNALS_DIRECTORY_TTL", int64(c.DirectoryTTL))
	p.Positive("SIGNALS_LANES", int64(c.Lanes))
	return p.Err()
}

// Run runs the service until ctx ends; a clean stop returns nil.
func Run(ctx context.Context, cfg Config, log *slog.Logger, reg prometheus.Registerer) error {
	return service.Run(ctx, service.Spec{
		Name: "signals", Config: cfg, Log: log, Registry: reg, Vars: vars,
		Bus:   &service.Bus{Streams: []string{topology.StreamCRM, topology.StreamSlackOut, topology.StreamIntegration}},
		Build: func(ctx context.Context, rt *service.Runtime) error { return build(ctx, cfg, rt) },
		Ready: service.ReadyAddrs(cfg.Ready),
	})
}

// build wires the service's core on the bus.
func build(ctx context.Context, cfg Config, rt *service.Runtime) error {
	log := rt.Log()
	m, err := newMetrics(rt.Registry())
	if err != nil {
		return err
	}
	js := rt.Bus.JetStream()
	settingsKV, err := bus.BindKeyValue(ctx, js, settingskv.BucketConfig(cfg.NATSReplicas))
	if err != nil {
		return err
	}
	stateKV, err := bus.BindKeyValue(ctx, js, statekv.BucketConfig(cfg.NATSReplicas))
	if err != nil {
		return err
	}
	teamsConn, err := rt.Dial("TEAMS_ADDR", cfg.TeamsAddr, identity.Teams)
	if err != nil {
		return err
	}

	view := settingskv.NewView()
	orgs := access.New()
	svc := app.New(app.Config{Window: cfg.Window, Render: render.Config{CRMBaseURL: cfg.CRMBaseURL}, Now: cfg.Now},
		settingskv.NewStore(settingsKV), view, orgs, owners.New(teamsConn, cfg.DirectoryTTL),
		statekv.New(stateKV), rt.Bus.Publisher(), m, log)

	// The consumers start once the settings and the org access are in
	// memory: a signal handled before would see the defaults, not the
	// org's matrix. The followers run until the consumers have stopped.
	followCtx, stopFollow := context.WithCancel(context.WithoutCancel(ctx))
	var followers sync.WaitGroup
	followers.Go(func() { _ = view.Follow(followCtx, settingsKV, time.Second, log) })
	followers.Go(func() { _ = orgaccess.Follow(followCtx, js, orgs, time.Second, log) })
	rt.OnClose("followers", func(context.Context) error {
		stopFollow()
		followers.Wait()
		return nil
	})
	if !waitSynced(ctx, log, view.Synced, orgs.Synced) {
		return nil
	}

	subs, err := inbound.Subscribe(ctx, rt.Bus, svc, cfg.Lanes, rt.Registry(), log)
	if err != nil {
		return err
	}
	for name, sub := range subs {
		rt.Consumer(name, sub)
	}
	grpcapi.Register(rt.GRPC(), grpcapi.New(svc))
	return nil
}

// waitSynced waits until every view read its bucket's initial values, and
// says so while it waits; false when ctx ended first.
func waitSynced(ctx context.Context, log *slog.Logger, synced ...func() bool) bool {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	start := time.Now()
	next := 5 * time.Second
	for {
		all := true
		for _, s := range synced {
			all = all && s()
		}
		if all {
			return true
		}
		if time.Since(start) > next {
			log.WarnContext(ctx, "waiting for the settings and org_access buckets (is the team registry up?)", "waited", time.Since(start).Round(time.Second))
			next *= 2
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}
