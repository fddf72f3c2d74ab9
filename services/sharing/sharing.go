// Package sharing shares CRM records (as business cards) and report charts
// (as PNGs) with the people and channels of an org's Slack teams. Run is
// its in-process entry point, used by cmd/sharing and tests.
//
// It serves sharing.v1.SharingService over gRPC (ShareRecord, ShareChart,
// ListTargets, ListShares) and takes the same shares through the bus
// (sharing.v1.ShareRecordRequested on crm.v1.<org>.share.record,
// ShareChartRequested on crm.v1.<org>.share.chart). It handles the "Share
// this record" button of /zcrm results (slack.v1.InteractionReceived). Each
// share is checked (integration on and team active, from the org_access
// bucket in memory; sharer a member of the team and targets inside it,
// from the team registry), recorded in MongoDB, and sent as Slack commands
// to the egress on slack.out.v1.<org>.<team>.{post,respond,upload}. The
// egress's outcomes (integration.v1.<org>.delivery.*) complete the record.
package sharing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmslack/crmslack/libs/card"
	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/libs/identity"
	"github.com/crmslack/crmslack/libs/orgaccess"
	"github.com/crmslack/crmslack/libs/service"
	"github.com/crmslack/crmslack/libs/signed"
	"github.com/crmslack/crmslack/libs/topology"

	"github.com/crmslack/crmslack/services/sharing/internal/access"
	"github.com/crmslack/crmslack/services/sharing/internal/app"
	"github.com/crmslack/crmslack/services/sharing/internal/grpcapi"
	"github.com/crmslack/crmslack/services/sharing/internal/inbound"
	"github.com/crmslack/crmslack/services/sharing/internal/mongorepo"
	"github.com/crmslack/crmslack/services/sharing/internal/remote"
)

// Config is the service's configuration. Each field names its variable and
// default.
type Config struct {
	// Connections are the trust files, NATS_URL, NATS_REPLICAS (of the
	// streams it ensures: CRM, SLACK_IN, SLACK_OUT, INTEGRATION),
	// MONGODB_URI, SHARING_MONGODB_DATABASE (the share log, default
	// "sharing"), SHARING_GRPC_ADDR (SharingService, default
	// 127.0.0.1:9104) and SHARING_OPS_ADDR (default 127.0.0.1:9204); see
	// libs/service.
	service.Connections
	// TeamsAddr is TEAMS_ADDR, the team registry's gRPC address
	// (ListTeams, ListDirectory, GetSlackUser). Default 127.0.0.1:9101.
	TeamsAddr string
	// QueryAddr is QUERY_ADDR, the query service's gRPC address
	// (GetRecord). Default 127.0.0.1:9103.
	QueryAddr string
	// CRMBaseURL is CRM_BASE_URL, the CRM's web UI: "Open in CRM" links of
	// records that carry no URL of their own are <it>/<module>/<id>. Empty
	// (the default): such records get no link.
	CRMBaseURL string
	// RequestMaxAge is SHARING_REQUEST_MAX_AGE: a share asked for through
	// the bus longer ago than this is refused rather than posted late.
	// Default 1h.
	RequestMaxAge time.Duration
	// ShareButtonKey is SHARE_BUTTON_KEY: the key(s) the query service
	// signs Share buttons with, comma-separated; a click whose button does
	// not verify, has expired or was issued to someone else is refused.
	// Required.
	ShareButtonKey string

	// Ready, not from the environment, is called once the service serves,
	// with the addresses it bound (tests listen on port 0).
	Ready func(Addrs)
	// Now, not from the environment, is the clock. Default time.Now.
	Now func() time.Time
}

// Addrs are the bound listen addresses.
type Addrs = service.Addrs

// vars are the service's own connection variables and their defaults.
var vars = service.Vars{Prefix: "SHARING", Database: "sharing", GRPCAddr: "127.0.0.1:9104", OpsAddr: "127.0.0.1:9204"}

// ConfigFromEnv reads the configuration; problems are recorded in l.
func ConfigFromEnv(l *envconfig.Loader) Config {
	return Config{
		Connections:    vars.FromEnv(l),
		TeamsAddr:      l.String("TEAMS_ADDR", "127.0.0.1:9101"),
		QueryAddr:      l.String("QUERY_ADDR", "127.0.0.1:9103"),
		CRMBaseURL:     l.URL("CRM_BASE_URL", "", "http", "https"),
		RequestMaxAge:  l.Duration("SHARING_REQUEST_MAX_AGE", time.Hour, time.Minute, 7*24*time.Hour),
		ShareButtonKey: l.Required("SHARE_BUTTON_KEY"),
	}
}

// Validate reports every invalid field by its variable name.
func (c Config) Validate() error {
	var p envconfig.Problems
	vars.Check(&p, c.Connections)
	p.HostPort(map[string]string{"TEAMS_ADDR": c.TeamsAddr, "QUERY_ADDR": c.QueryAddr})
	if c.CRMBaseURL != "" {
		p.HTTPURL(map[string]string{"CRM_BASE_URL": c.CRMBaseURL})
	}
	p.Positive("SHARING_REQUEST_MAX_AGE", int64(c.RequestMaxAge))
	if _, err := card.NewButtons(nil, signed.ParseKeys(c.ShareButtonKey)...); err != nil {
		p.Add("SHARE_BUTTON_KEY", "%v", err)
	}
	return p.Err()
}

// Run runs the service until ctx ends; a clean stop returns nil.
func Run(ctx context.Context, cfg Config, log *slog.Logger, reg prometheus.Registerer) error {
	return service.Run(ctx, service.Spec{
		Name: "sharing", Config: cfg, Log: log, Registry: reg, Vars: vars,
		Store: &service.Store{Indexes: mongorepo.Indexes()},
		Bus: &service.Bus{Streams: []string{
			topology.StreamCRM, topology.StreamSlackIn, topology.StreamSlackOut, topology.StreamIntegration,
		}},
		Build: func(ctx context.Context, rt *service.Runtime) error { return build(ctx, cfg, rt) },
		Ready: service.ReadyAddrs(cfg.Ready),
	})
}

// build wires the sharing core on the store, the bus and its two clients.
func build(ctx context.Context, cfg Config, rt *service.Runtime) error {
	log, b := rt.Log(), rt.Bus
	teamsConn, err := rt.Dial("TEAMS_ADDR", cfg.TeamsAddr, identity.Teams)
	if err != nil {
		return err
	}
	queryConn, err := rt.Dial("QUERY_ADDR", cfg.QueryAddr, identity.Query)
	if err != nil {
		return err
	}
	shares := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crmslack_sharing_shares_total",
		Help: "Shares decided, by kind (record, chart), how they were asked (grpc, bus, button) and result (shared, refused).",
	}, []string{"kind", "via", "result"})
	if err := rt.Registry().Register(shares); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	buttons, err := card.NewButtons(cfg.Now, signed.ParseKeys(cfg.ShareButtonKey)...)
	if err != nil {
		return fmt.Errorf("SHARE_BUTTON_KEY: %w", err)
	}
	view := access.New(log)
	svc := app.New(app.Config{
		CRMBaseURL: cfg.CRMBaseURL, RequestMaxAge: cfg.RequestMaxAge, Now: cfg.Now, Buttons: buttons,
		Observe: func(kind, via, result string) { shares.WithLabelValues(kind, via, result).Inc() },
	},
		view, remote.NewTeams(teamsConn), remote.NewRecords(queryConn), b, mongorepo.New(rt.Store.DB()), log)

	subs, err := inbound.Subscribe(ctx, b, svc)
	for _, s := range subs {
		rt.Consumer(s.Durable(), s)
	}
	if err != nil {
		return err
	}
	grpcapi.Register(rt.GRPC(), grpcapi.New(svc))
	rt.Check(func(context.Context) error {
		if !view.Synced() {
			return errors.New("org access not loaded yet (is the team registry up?)")
		}
		return nil
	})
	rt.Part("org-access", func(ctx context.Context) error {
		return orgaccess.Follow(ctx, b.JetStream(), view, time.Second, log)
	})
	return nil
}
