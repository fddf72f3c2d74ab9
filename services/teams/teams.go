// Package teams is the team registry: which Slack teams each CRM org
// authorised, their encrypted tokens, and each org's integration switch.
// Run is its in-process entry point, used by cmd/teams and the local runner.
//
// It serves teams.v1.TeamRegistryService over gRPC, consumes the Slack
// events the gateway verified (app_uninstalled, tokens_revoked), publishes
// TeamInstalled, TeamRemoved, IntegrationDisabled and IntegrationEnabled,
// keeps each org's OrgAccess in the org_access bucket for the Slack egress,
// and refreshes rotating Slack tokens well before they expire.
package teams

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/libs/installticket"
	"github.com/crmslack/crmslack/libs/service"
	"github.com/crmslack/crmslack/libs/topology"

	"github.com/crmslack/crmslack/services/teams/internal/accesskv"
	"github.com/crmslack/crmslack/services/teams/internal/app"
	"github.com/crmslack/crmslack/services/teams/internal/grpcapi"
	"github.com/crmslack/crmslack/services/teams/internal/inbound"
	"github.com/crmslack/crmslack/services/teams/internal/mongorepo"
	"github.com/crmslack/crmslack/services/teams/internal/sealing"
	"github.com/crmslack/crmslack/services/teams/internal/slackapi"
)

// Config is the registry's configuration. Each field names its variable and
// default.
type Config struct {
	// Connections are the trust files, NATS_URL, NATS_REPLICAS (also the
	// org_access bucket's), MONGODB_URI, TEAMS_MONGODB_DATABASE (default
	// "teams"), TEAMS_GRPC_ADDR (TeamRegistryService, default
	// 127.0.0.1:9101) and TEAMS_OPS_ADDR (default 127.0.0.1:9201); see
	// libs/service.
	service.Connections
	// TokenKeys is TEAMS_TOKEN_KEYS: "keyid:base64-of-32-bytes" entries,
	// comma-separated; the first encrypts, all decrypt. Required.
	TokenKeys string
	// InstallTicketKey is INSTALL_TICKET_KEY: HMAC key(s), comma-separated,
	// at least 32 bytes each, shared with the gateway; the first signs the
	// install tickets of BeginInstall. Required.
	InstallTicketKey string
	// GatewayPublicURL is GATEWAY_PUBLIC_URL, the gateway's public base URL;
	// BeginInstall answers <it>/slack/install?…. Default
	// http://127.0.0.1:8080.
	GatewayPublicURL string
	// SlackAPIURL is SLACK_API_URL. Default https://slack.com/api/.
	SlackAPIURL string
	// SlackClientID is SLACK_CLIENT_ID, for token refresh. Required.
	SlackClientID string
	// SlackClientSecret is SLACK_CLIENT_SECRET, for token refresh. Required.
	SlackClientSecret string
	// RefreshInterval is TEAMS_REFRESH_INTERVAL: how often rotating tokens
	// are checked for a due refresh. Default 1m.
	RefreshInterval time.Duration
	// SweepInterval is TEAMS_SWEEP_INTERVAL: how often events whose publish
	// failed, and failed org_access writes, are retried. Default 30s.
	SweepInterval time.Duration
	// MembershipTTL is TEAMS_MEMBERSHIP_TTL: how long ListTeams remembers
	// that an email belongs to a team (a fifth of it for "does not").
	// Default 10m.
	MembershipTTL time.Duration
	// DirectoryTTL is TEAMS_DIRECTORY_TTL: how long ListDirectory keeps a
	// team's channels and users before asking Slack again. Default 5m.
	DirectoryTTL time.Duration
	// TokenCheckInterval is TEAMS_TOKEN_CHECK_INTERVAL: how often every
	// active team's token is tested (auth.test), so a revocation Slack's
	// event did not tell is found. Default 15m.
	TokenCheckInterval time.Duration

	// Ready, not from the environment, is called once the service serves,
	// with the addresses it bound (tests listen on port 0).
	Ready func(Addrs)
	// Now, not from the environment, is the clock. Default time.Now.
	Now func() time.Time
}

// Addrs are the bound listen addresses.
type Addrs = service.Addrs

// vars are the registry's own connection variables and their defaults.
var vars = service.Vars{Prefix: "TEAMS", Database: "teams", GRPCAddr: "127.0.0.1:9101", OpsAddr: "127.0.0.1:9201"}

// ConfigFromEnv reads the configuration; problems are recorded in l.
func ConfigFromEnv(l *envconfig.Loader) Config {
	return Config{
		Connections:        vars.FromEnv(l),
		TokenKeys:          l.Required("TEAMS_TOKEN_KEYS"),
		InstallTicketKey:   l.Required("INSTALL_TICKET_KEY"),
		GatewayPublicURL:   l.URL("GATEWAY_PUBLIC_URL", "http://127.0.0.1:8080", "http", "https"),
		SlackAPIURL:        l.URL("SLACK_API_URL", "https://slack.com/api/", "http", "https"),
		SlackClientID:      l.Required("SLACK_CLIENT_ID"),
		SlackClientSecret:  l.Required("SLACK_CLIENT_SECRET"),
		RefreshInterval:    l.Duration("TEAMS_REFRESH_INTERVAL", time.Minute, time.Second, time.Hour),
		SweepInterval:      l.Duration("TEAMS_SWEEP_INTERVAL", 30*time.Second, time.Second, time.Hour),
		MembershipTTL:      l.Duration("TEAMS_MEMBERSHIP_TTL", 10*time.Minute, time.Second, 24*time.Hour),
		DirectoryTTL:       l.Duration("TEAMS_DIRECTORY_TTL", 5*time.Minute, time.Second, 24*time.Hour),
		TokenCheckInterval: l.Duration("TEAMS_TOKEN_CHECK_INTERVAL", 15*time.Minute, time.Second, 24*time.Hour),
	}
}

// Validate reports every invalid field by its variable name. It never
// repeats a secret.
func (c Config) Validate() error {
	var p envconfig.Problems
	vars.Check(&p, c.Connections)
	_, err := sealing.ParseKeys(c.TokenKeys)
	p.Check("TEAMS_TOKEN_KEYS", err)
	_, err = installticket.NewSigner(nil, installticket.ParseKeys(c.InstallTicketKey)...)
	p.Check("INSTALL_TICKET_KEY", err)
	p.HTTPURL(map[string]string{"GATEWAY_PUBLIC_URL": c.GatewayPublicURL, "SLACK_API_URL": c.SlackAPIURL})
	if !strings.HasSuffix(c.SlackAPIURL, "/") {
		p.Add("SLACK_API_URL", "must end with a slash, e.g. https://slack.com/api/")
	}
	p.Required("SLACK_CLIENT_ID", c.SlackClientID)
	p.Required("SLACK_CLIENT_SECRET", c.SlackClientSecret)
	if c.DirectoryTTL < 0 {
		p.Add("TEAMS_DIRECTORY_TTL", "must not be negative (0 means the default, 5m)")
	}
	p.Positive("TEAMS_REFRESH_INTERVAL", int64(c.RefreshInterval))
	p.Positive("TEAMS_SWEEP_INTERVAL", int64(c.SweepInterval))
	p.Positive("TEAMS_MEMBERSHIP_TTL", int64(c.MembershipTTL))
	return p.Err()
}

// Run runs the registry until ctx ends; a clean stop returns nil.
func Run(ctx context.Context, cfg Config, log *slog.Logger, reg prometheus.Registerer) error {
	return service.Run(ctx, service.Spec{
		Name: "teams", Config: cfg, Log: log, Registry: reg, Vars: vars,
		Store: &service.Store{Indexes: mongorepo.Indexes()},
		Bus:   &service.Bus{Streams: []string{topology.StreamIntegration, topology.StreamSlackIn}},
		Build: func(ctx context.Context, rt *service.Runtime) error { return build(ctx, cfg, rt) },
		Ready: service.ReadyAddrs(cfg.Ready),
	})
}

// build wires the registry's core on the store and bus.
func build(ctx context.Context, cfg Config, rt *service.Runtime) error {
	log := rt.Log()
	keys, err := sealing.ParseKeys(cfg.TokenKeys)
	if err != nil {
		return err
	}
	tickets, err := installticket.NewSigner(cfg.Now, installticket.ParseKeys(cfg.InstallTicketKey)...)
	if err != nil {
		return err
	}
	kv, err := accesskv.Ensure(ctx, rt.Bus.JetStream(), cfg.NATSReplicas)
	if err != nil {
		return err
	}
	refreshes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crmslack_teams_token_refresh_runs_total",
		Help: "Background token refresh runs by outcome (ok, error).",
	}, []string{"outcome"})
	if err := rt.Registry().Register(refreshes); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}

	svc := app.New(app.Config{
		InstallURL:         strings.TrimSuffix(cfg.GatewayPublicURL, "/") + "/slack/install",
		MembershipTTL:      cfg.MembershipTTL,
		DirectoryTTL:       cfg.DirectoryTTL,
		TokenCheckInterval: cfg.TokenCheckInterval,
	}, mongorepo.New(rt.Store.DB()), rt.Bus.Publisher(), accesskv.New(kv),
		slackapi.New(cfg.SlackAPIURL, cfg.SlackClientID, cfg.SlackClientSecret, nil, cfg.Now),
		keys, tickets, log, cfg.Now)
	if err := svc.RegisterMetrics(rt.Registry()); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}

	// Publish what a previous run left pending and write every org's access,
	// so the bucket is right even if it was lost.
	if err := svc.Sweep(ctx, true); err != nil {
		log.WarnContext(ctx, "start-up sweep incomplete; retrying in the background", "err", err)
	}
	// A key rotation takes a restart with the new TEAMS_TOKEN_KEYS: finish it.
	if _, err := svc.Reseal(ctx); err != nil {
		log.WarnContext(ctx, "re-sealing tokens under the current key incomplete; the next start retries", "err", err)
	}

	sub, err := inbound.Subscribe(ctx, rt.Bus, svc)
	if err != nil {
		return err
	}
	rt.Consumer("slack-events", sub)
	grpcapi.Register(rt.GRPC(), grpcapi.New(svc))
	log.InfoContext(ctx, "team registry sealing tokens", "sealing_key_id", keys.CurrentKeyID())

	rt.Part("maintenance", func(ctx context.Context) error {
		refresh := time.NewTicker(cfg.RefreshInterval)
		defer refresh.Stop()
		sweep := time.NewTicker(cfg.SweepInterval)
		defer sweep.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-refresh.C:
				n, err := svc.RefreshDue(ctx)
				if err != nil && ctx.Err() == nil {
					refreshes.WithLabelValues("error").Inc()
					log.WarnContext(ctx, "token refresh run incomplete", "refreshed", n, "err", err)
				} else {
					refreshes.WithLabelValues("ok").Inc()
				}
				if _, err := svc.CheckTokens(ctx); err != nil && ctx.Err() == nil {
					log.WarnContext(ctx, "token check incomplete", "err", err)
				}
			case <-sweep.C:
				if err := svc.Sweep(ctx, false); err != nil && ctx.Err() == nil {
					log.WarnContext(ctx, "sweep incomplete", "err", err)
				}
			}
		}
	})
	return nil
}
