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
	"github.com/crmslack/crmslack/libs/trust"

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
	// Files are the service's trust files: TLS_CERT_FILE, TLS_KEY_FILE, TLS_CA_FILE and CRM_KEYS_FILE (libs/trust). Required.
	trust.Files
	// NATSURL is NATS_URL: the NATS server(s). Default nats://127.0.0.1:4222.
	NATSURL string
	// NATSReplicas is NATS_REPLICAS: replicas of the streams this service
	// ensures (CRM, SLACK_IN, SLACK_OUT, INTEGRATION). Default 1.
	NATSReplicas int
	// MongoURI is MONGODB_URI. Default mongodb://127.0.0.1:27017.
	MongoURI string
	// Database is SHARING_MONGODB_DATABASE, the share log's database.
	// Default "sharing".
	Database string
	// GRPCAddr is SHARING_GRPC_ADDR, where SharingService listens. Default
	// 127.0.0.1:9104.
	GRPCAddr string
	// OpsAddr is SHARING_OPS_ADDR, serving /healthz, /readyz and /metrics.
	// Default 127.0.0.1:9204.
	OpsAddr string
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

	// Ready, not from the environment, is called once the service serves,
	// with the addresses it bound (tests listen on port 0).
	Ready func(Addrs)
	// Now, not from the environment, is the clock. Default time.Now.
	Now func() time.Time
}

// Addrs are the bound listen addresses.
type Addrs struct {
	GRPC, Ops string
}

// ConfigFromEnv reads the configuration; problems are recorded in l.
func ConfigFromEnv(l *envconfig.Loader) Config {
	return Config{
		Files:         trust.FromEnv(l),
		NATSURL:       l.String("NATS_URL", "nats://127.0.0.1:4222"),
		NATSReplicas:  l.Int("NATS_REPLICAS", 1, 1, 5),
		MongoURI:      l.String("MONGODB_URI", "mongodb://127.0.0.1:27017"),
		Database:      l.String("SHARING_MONGODB_DATABASE", "sharing"),
		GRPCAddr:      l.String("SHARING_GRPC_ADDR", "127.0.0.1:9104"),
		OpsAddr:       l.String("SHARING_OPS_ADDR", "127.0.0.1:9204"),
		TeamsAddr:     l.String("TEAMS_ADDR", "127.0.0.1:9101"),
		QueryAddr:     l.String("QUERY_ADDR", "127.0.0.1:9103"),
		CRMBaseURL:    l.URL("CRM_BASE_URL", "", "http", "https"),
		RequestMaxAge: l.Duration("SHARING_REQUEST_MAX_AGE", time.Hour, time.Minute, 7*24*time.Hour),
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
		bad("MONGODB_URI/SHARING_MONGODB_DATABASE", "%v", err)
	}
	for name, addr := range map[string]string{
		"SHARING_GRPC_ADDR": c.GRPCAddr, "SHARING_OPS_ADDR": c.OpsAddr, "TEAMS_ADDR": c.TeamsAddr, "QUERY_ADDR": c.QueryAddr,
	} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad(name, "%q is not host:port", addr)
		}
	}
	if c.CRMBaseURL != "" {
		if u, err := url.Parse(c.CRMBaseURL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			bad("CRM_BASE_URL", "%q is not an http(s) URL", c.CRMBaseURL)
		}
	}
	if c.RequestMaxAge <= 0 {
		bad("SHARING_REQUEST_MAX_AGE", "must be positive")
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// Run runs the service until ctx ends; a clean stop returns nil.
func Run(ctx context.Context, cfg Config, log *slog.Logger, reg prometheus.Registerer) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("sharing configuration: %w", err)
	}
	log = log.With("service", "sharing")
	trusted, err := cfg.Files.Load(true)
	if err != nil {
		return fmt.Errorf("sharing configuration: %w", err)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}

	db, err := store.Open(ctx, store.Config{URI: cfg.MongoURI, Database: cfg.Database, AppName: "sharing"})
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = db.Close(cctx)
	}()
	if err := db.EnsureIndexes(ctx, mongorepo.Indexes()); err != nil {
		return err
	}

	b, err := bus.Connect(ctx, bus.Config{URL: cfg.NATSURL, Name: "sharing", Logger: log, Registerer: reg, StreamReplicas: cfg.NATSReplicas})
	if err != nil {
		return err
	}
	defer func() {
		if err := b.Close(); err != nil {
			log.Warn("closing the bus", "err", err)
		}
	}()
	if err := b.EnsureStreams(ctx, topology.Select(topology.StreamOptions{Replicas: cfg.NATSReplicas, Storage: jetstream.FileStorage},
		topology.StreamCRM, topology.StreamSlackIn, topology.StreamSlackOut, topology.StreamIntegration)...); err != nil {
		return err
	}

	teamsConn, err := rpc.Dial(cfg.TeamsAddr, trusted.Identity)
	if err != nil {
		return fmt.Errorf("TEAMS_ADDR: %w", err)
	}
	defer func() { _ = teamsConn.Close() }()
	queryConn, err := rpc.Dial(cfg.QueryAddr, trusted.Identity)
	if err != nil {
		return fmt.Errorf("QUERY_ADDR: %w", err)
	}
	defer func() { _ = queryConn.Close() }()

	shares := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crmslack_sharing_shares_total",
		Help: "Shares decided, by kind (record, chart), how they were asked (grpc, bus, button) and result (shared, refused).",
	}, []string{"kind", "via", "result"})
	if err := reg.Register(shares); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	view := access.New(log)
	svc := app.New(app.Config{
		CRMBaseURL: cfg.CRMBaseURL, RequestMaxAge: cfg.RequestMaxAge, Now: cfg.Now,
		Observe: func(kind, via, result string) { shares.WithLabelValues(kind, via, result).Inc() },
	},
		view, remote.NewTeams(teamsConn), remote.NewRecords(queryConn), b, mongorepo.New(db.DB()), log)

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
		return fmt.Errorf("SHARING_GRPC_ADDR %s: %w", cfg.GRPCAddr, err)
	}
	opsLis, err := net.Listen("tcp", cfg.OpsAddr)
	if err != nil {
		_ = grpcLis.Close()
		return fmt.Errorf("SHARING_OPS_ADDR %s: %w", cfg.OpsAddr, err)
	}
	gs, err := rpc.NewServer(log, rpc.Security{Identity: trusted.Identity, CRMKeys: trusted.CRMKeys, Registerer: reg})
	if err != nil {
		_ = grpcLis.Close()
		_ = opsLis.Close()
		return err
	}
	grpcapi.Register(gs, grpcapi.New(svc))

	var ready lifecycle.Readiness
	ready.AddCheck(db.Ping)
	ready.AddCheck(func(context.Context) error {
		if !b.Conn().IsConnected() {
			return errors.New("NATS disconnected")
		}
		if !view.Synced() {
			return errors.New("org access not loaded yet (is the team registry up?)")
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
	log.InfoContext(ctx, "sharing serving", "grpc", grpcLis.Addr().String(), "ops", opsLis.Addr().String())
	if cfg.Ready != nil {
		cfg.Ready(Addrs{GRPC: grpcLis.Addr().String(), Ops: opsLis.Addr().String()})
	}
	return lifecycle.Run(ctx, log,
		gs.Part("grpc", grpcLis),
		lifecycle.HTTPServer("ops", ops, opsLis),
		lifecycle.Part{Name: "org-access", Run: func(ctx context.Context) error {
			return orgaccess.Follow(ctx, b.JetStream(), view, time.Second, log)
		}},
	)
}
