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
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/libs/lifecycle"
	"github.com/crmslack/crmslack/libs/orgaccess"
	"github.com/crmslack/crmslack/libs/service"
	"github.com/crmslack/crmslack/libs/signed"
	"github.com/crmslack/crmslack/libs/topology"

	"github.com/crmslack/crmslack/services/reminders/internal/access"
	"github.com/crmslack/crmslack/services/reminders/internal/activitykv"
	"github.com/crmslack/crmslack/services/reminders/internal/app"
	"github.com/crmslack/crmslack/services/reminders/internal/grpcapi"
	"github.com/crmslack/crmslack/services/reminders/internal/inbound"
	"github.com/crmslack/crmslack/services/reminders/internal/prefs"
	"github.com/crmslack/crmslack/services/reminders/internal/remind"
	"github.com/crmslack/crmslack/services/reminders/internal/timers"
)

// Config is the service's configuration. Each field names its variable and
// default.
type Config struct {
	// Connections are the trust files, NATS_URL, NATS_REPLICAS (of the
	// streams and buckets it ensures), MONGODB_URI,
	// REMINDERS_MONGODB_DATABASE (the preferences, default "reminders"),
	// REMINDERS_GRPC_ADDR (ReminderPreferencesService, default
	// 127.0.0.1:9106) and REMINDERS_OPS_ADDR (default 127.0.0.1:9206); see
	// libs/service.
	service.Connections
	// CRMBaseURL is CRM_BASE_URL: "Open in CRM" of an activity without a
	// URL of its own is <it>/Activities/<id>. Empty (the default): no link.
	CRMBaseURL string
	// Snooze is REMINDERS_SNOOZE: how long "Snooze" waits. Default 10m.
	Snooze time.Duration
	// ButtonKey is REMINDERS_BUTTON_KEY: HMAC key(s), comma-separated, at
	// least 32 bytes each, signing the Snooze and Mark done buttons; the
	// first signs, all check (a rotation). Required.
	ButtonKey string
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
}

// Addrs are the bound listen addresses.
type Addrs = service.Addrs

// vars are the service's own connection variables and their defaults.
var vars = service.Vars{Prefix: "REMINDERS", Database: "reminders", GRPCAddr: "127.0.0.1:9106", OpsAddr: "127.0.0.1:9206"}

// ConfigFromEnv reads the configuration; problems are recorded in l.
func ConfigFromEnv(l *envconfig.Loader) Config {
	return Config{
		Connections: vars.FromEnv(l),
		CRMBaseURL:  l.URL("CRM_BASE_URL", "", "http", "https"),
		ButtonKey:   l.Required("REMINDERS_BUTTON_KEY"),
		Snooze:      l.Duration("REMINDERS_SNOOZE", 10*time.Minute, time.Second, 24*time.Hour),
		LateAfter:   l.Duration("REMINDERS_LATE_AFTER", time.Minute, time.Second, 24*time.Hour),
	}
}

// Validate reports every invalid field by its variable name.
func (c Config) Validate() error {
	var p envconfig.Problems
	vars.Check(&p, c.Connections)
	if c.CRMBaseURL != "" {
		p.HTTPURL(map[string]string{"CRM_BASE_URL": c.CRMBaseURL})
	}
	if _, err := remind.NewButtons(signed.ParseKeys(c.ButtonKey)...); err != nil {
		p.Add("REMINDERS_BUTTON_KEY", "%v", err)
	}
	p.Positive("REMINDERS_SNOOZE", int64(c.Snooze))
	p.Positive("REMINDERS_LATE_AFTER", int64(c.LateAfter))
	return p.Err()
}

// Run runs the service until ctx ends; a clean stop returns nil.
func Run(ctx context.Context, cfg Config, log *slog.Logger, reg prometheus.Registerer) error {
	return service.Run(ctx, service.Spec{
		Name: "reminders", Config: cfg, Log: log, Registry: reg, Vars: vars,
		Bus: &service.Bus{
			Streams: []string{topology.StreamCRM, topology.StreamSlackIn, topology.StreamSlackOut},
			Own:     []jetstream.StreamConfig{topology.RemindersStream(topology.StreamOptions{Replicas: cfg.NATSReplicas})}},
		Build: func(ctx context.Context, rt *service.Runtime) error { return build(ctx, cfg, rt) },
		Ready: service.ReadyAddrs(cfg.Ready),
	})
}

// build wires the core on the store and bus: the buckets and the timers'
// stream, the followers of preferences and org access (which fired
// reminders wait for), the consumers and the gRPC API.
func build(ctx context.Context, cfg Config, rt *service.Runtime) error {
	log := rt.Log()
	js := rt.Bus.JetStream()
	acts, err := activitykv.Ensure(ctx, js, cfg.NATSReplicas, jetstream.FileStorage)
	if err != nil {
		return err
	}
	people, err := activitykv.EnsureIndex(ctx, js, cfg.NATSReplicas, jetstream.FileStorage)
	if err != nil {
		return err
	}
	tms, err := timers.New(ctx, js)
	if err != nil {
		return err
	}
	prefStore, err := prefs.New(ctx, rt.Store.DB(), js, cfg.NATSReplicas, jetstream.FileStorage)
	if err != nil {
		return err
	}
	m, err := newMetrics(rt.Registry())
	if err != nil {
		return err
	}
	buttons, err := remind.NewButtons(signed.ParseKeys(cfg.ButtonKey)...)
	if err != nil {
		return fmt.Errorf("REMINDERS_BUTTON_KEY: %w", err)
	}
	view := prefs.NewView()
	teams := access.New()
	svc := app.New(app.Config{CRMBaseURL: cfg.CRMBaseURL, Snooze: cfg.Snooze, LateAfter: cfg.LateAfter, Now: cfg.Now, Buttons: buttons},
		app.Deps{Activities: acts, People: people, Timers: tms, Preferences: view, PrefStore: prefStore, Access: teams,
			Publisher: rt.Bus.Publisher(), Metrics: m}, log)

	if n, err := prefStore.Sync(ctx, view.Get); err != nil {
		log.WarnContext(ctx, "copying preferences to their bucket incomplete", "copied", n, "err", err)
	}
	rt.Part("preferences", func(ctx context.Context) error { return prefs.Follow(ctx, prefStore.KV(), view, log) })
	rt.Part("org-access", func(ctx context.Context) error { return orgaccess.Follow(ctx, js, teams, time.Second, log) })
	// The consumers, once started (below), are part of readiness.
	var running atomic.Pointer[[]*bus.Subscription]
	rt.Check(func(context.Context) error {
		if !view.Synced() || !teams.Synced() {
			return errors.New("preferences or org access not loaded yet (is the team registry up?)")
		}
		if subs := running.Load(); subs != nil {
			for _, s := range *subs {
				if err := s.Healthy(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	grpcapi.Register(rt.GRPC(), grpcapi.New(svc))

	// Consumers start once this replica knows every user's choice and
	// every org's teams: deciding without them would drop reminders.
	release := rt.HoldReady()
	rt.Part("consumers", func(ctx context.Context) error {
		for !view.Synced() || !teams.Synced() {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(10 * time.Millisecond):
			}
		}
		subs, err := inbound.Subscribe(ctx, rt.Bus, svc)
		if err != nil {
			return err
		}
		running.Store(&subs)
		release()
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lifecycle.ShutdownTimeout)
		defer cancel()
		for _, s := range subs {
			if err := s.Stop(sctx); err != nil {
				log.Warn("stopping a consumer", "err", err)
			}
		}
		return nil
	})
	return nil
}
