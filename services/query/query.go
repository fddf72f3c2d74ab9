// Package query is the slash-command service: it answers /zcrm commands
// from an in-memory projection of every org's CRM records. Run is its
// in-process entry point, used by cmd/query and the local runner.
//
// # Data
//
// CRM record and user events (stream CRM) are persisted by shared durable
// consumers into two snapshot streams that keep the last event per record
// and per user (QUERY_RECORDS, QUERY_USERS; deletes as tombstones), with
// compare-and-set by version. Every replica follows those streams with an
// ordered consumer: at start-up the replay of the last message per subject
// rebuilds its memory, and only then does it report ready; afterwards it
// applies each new snapshot within a millisecond or so. See internal/feed
// and internal/snapshot.
//
// # Answering
//
// QueryService.RunSlashCommand answers from memory: the caller's Slack
// email (asked of the team registry, cached) must belong to an active CRM
// user of the org; the text is parsed, bound to the module's fields and
// searched; the answer is ephemeral Block Kit with at most 10 record cards,
// each with "Open in CRM" and "Share this record", the total matched and
// how the query was understood. GetRecord returns one record and its
// module's schema.
//
// # Late answers: the contract with the gateway
//
// Slack gives a slash command 3 seconds. The gateway calls RunSlashCommand
// with a deadline well under that. If the answer arrives in time, the
// gateway returns it. If not, the gateway acknowledges at once with an
// ephemeral "Searching…" and publishes the command to
// slack.in.v1.<team>.command with SlashCommandReceived.deferred = true.
// This service's durable consumer "query-commands" answers each deferred
// /zcrm command by publishing slack.v1.RespondToURL to
// slack.out.v1.<org>.<team>.respond (idempotency key = the command's event
// id) for the Slack egress. Commands published with deferred = false were
// answered synchronously and are ignored, so no command is answered twice.
// See internal/late.
package query

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/card"
	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/libs/identity"
	"github.com/crmslack/crmslack/libs/lifecycle"
	"github.com/crmslack/crmslack/libs/service"
	"github.com/crmslack/crmslack/libs/signed"
	"github.com/crmslack/crmslack/libs/topology"
	queryv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/query/v1"
	"github.com/crmslack/crmslack/services/query/internal/app"
	"github.com/crmslack/crmslack/services/query/internal/crmusers"
	"github.com/crmslack/crmslack/services/query/internal/feed"
	"github.com/crmslack/crmslack/services/query/internal/grpcapi"
	"github.com/crmslack/crmslack/services/query/internal/late"
	"github.com/crmslack/crmslack/services/query/internal/projection"
	"github.com/crmslack/crmslack/services/query/internal/render"
	"github.com/crmslack/crmslack/services/query/internal/snapshot"
	"github.com/crmslack/crmslack/services/query/internal/teamsclient"
)

// Directory finds a Slack user's email; the team registry's GetSlackUser
// implements it in production. It returns [ErrUnknownSlackUser] when the
// team has no such user.
type Directory = app.Directory

// SlackUser is what a Directory answers.
type SlackUser = app.SlackUser

// ErrUnknownSlackUser is what a Directory returns for a user it does not know.
var ErrUnknownSlackUser = app.ErrUnknownSlackUser

// Config is the service's configuration. Each field names its variable and
// default.
type Config struct {
	// Connections are the trust files, NATS_URL, NATS_REPLICAS (of the
	// streams it declares, QUERY_RECORDS and QUERY_USERS, and ensures: CRM,
	// SLACK_IN, SLACK_OUT), QUERY_GRPC_ADDR (QueryService, default
	// 127.0.0.1:9103) and QUERY_OPS_ADDR (default 127.0.0.1:9203); see
	// libs/service. It keeps no database: its state is in JetStream.
	service.Connections
	// TeamsAddr is TEAMS_ADDR, the team registry's gRPC address
	// (GetSlackUser, ResolveTeam). Default 127.0.0.1:9101.
	TeamsAddr string
	// CRMBaseURL is CRM_BASE_URL, the CRM's web UI; "Open in CRM" links of
	// records that carry no URL of their own are <it>/<module>/<id>. Empty
	// (the default): such records get no link.
	CRMBaseURL string
	// SlashCommands is QUERY_SLASH_COMMANDS: the command names this service
	// answers late, comma-separated. Default "/zcrm".
	SlashCommands []string
	// SlackUserTTL is QUERY_SLACK_USER_TTL: how long a Slack user's email
	// is remembered. Default 10m.
	SlackUserTTL time.Duration
	// ShareButtonKey is SHARE_BUTTON_KEY: HMAC key(s) signing the Share
	// buttons of results, comma-separated, at least 32 bytes each; the
	// first signs. Sharing checks clicks with the same key. Required.
	ShareButtonKey string

	// Directory, not from the environment, replaces the team registry for
	// Slack users' emails (tests, the local runner). Nil: TEAMS_ADDR.
	Directory Directory
	// Ready, not from the environment, is called once the service is ready,
	// with the addresses it bound (tests listen on port 0).
	Ready func(Addrs)
	// Now, not from the environment, is the clock. Default time.Now.
	Now func() time.Time
	// Rebuilding, not from the environment, is called as the rebuild from
	// the snapshot streams starts, with the share of the records stream
	// applied so far (0 to 1), and what it returns once it is done: the
	// process's main bounds the rebuild's memory with it (package
	// rebuildmem). Nil: nothing.
	Rebuilding func(progress func() float64) (done func())
}

// Addrs are the bound listen addresses.
type Addrs = service.Addrs

// vars are the service's own connection variables and their defaults.
var vars = service.Vars{Prefix: "QUERY", GRPCAddr: "127.0.0.1:9103", OpsAddr: "127.0.0.1:9203"}

// ConfigFromEnv reads the configuration; problems are recorded in l.
func ConfigFromEnv(l *envconfig.Loader) Config {
	var cmds []string
	for c := range strings.SplitSeq(l.String("QUERY_SLASH_COMMANDS", "/zcrm"), ",") {
		if c = strings.TrimSpace(c); c != "" {
			cmds = append(cmds, c)
		}
	}
	return Config{
		Connections:    vars.FromEnv(l),
		TeamsAddr:      l.String("TEAMS_ADDR", "127.0.0.1:9101"),
		CRMBaseURL:     l.URL("CRM_BASE_URL", "", "http", "https"),
		SlashCommands:  cmds,
		SlackUserTTL:   l.Duration("QUERY_SLACK_USER_TTL", teamsclient.DefaultUserTTL, time.Second, 24*time.Hour),
		ShareButtonKey: l.Required("SHARE_BUTTON_KEY"),
	}
}

// Validate reports every invalid field by its variable name.
func (c Config) Validate() error {
	var p envconfig.Problems
	vars.Check(&p, c.Connections)
	if c.Directory == nil && c.TeamsAddr == "" {
		p.Add("TEAMS_ADDR", "required (the team registry gives Slack users' emails)")
	}
	if c.CRMBaseURL != "" {
		p.HTTPURL(map[string]string{"CRM_BASE_URL": c.CRMBaseURL})
	}
	if len(c.SlashCommands) == 0 {
		p.Add("QUERY_SLASH_COMMANDS", "name at least one command, e.g. /zcrm")
	}
	for _, cmd := range c.SlashCommands {
		if !strings.HasPrefix(cmd, "/") || strings.ContainsAny(cmd, " \t") {
			p.Add("QUERY_SLASH_COMMANDS", "%q is not a slash command such as /zcrm", cmd)
		}
	}
	p.Positive("QUERY_SLACK_USER_TTL", int64(c.SlackUserTTL))
	if _, err := card.NewButtons(nil, signed.ParseKeys(c.ShareButtonKey)...); err != nil {
		p.Add("SHARE_BUTTON_KEY", "%v", err)
	}
	return p.Err()
}

// Run runs the service until ctx ends; a clean stop returns nil.
func Run(ctx context.Context, cfg Config, log *slog.Logger, reg prometheus.Registerer) error {
	return service.Run(ctx, service.Spec{
		Name: "query", Config: cfg, Log: log, Registry: reg, Vars: vars,
		Bus: &service.Bus{
			Streams: []string{topology.StreamCRM, topology.StreamSlackIn, topology.StreamSlackOut},
			Own:     snapshot.StreamConfigs(cfg.NATSReplicas, jetstream.FileStorage),
		},
		Build: func(ctx context.Context, rt *service.Runtime) error { return build(cfg, rt) },
		Ready: service.ReadyAddrs(cfg.Ready),
	})
}

// build wires the answering core on the bus; the service is ready once the
// projection is rebuilt.
func build(cfg Config, rt *service.Runtime) error {
	log, b := rt.Log(), rt.Bus
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	directory, teams := cfg.Directory, app.TeamOrgs(nil)
	if cfg.TeamsAddr != "" {
		cc, err := rt.Dial("TEAMS_ADDR", cfg.TeamsAddr, identity.Teams)
		if err != nil {
			return err
		}
		tc := teamsclient.New(cc, cfg.SlackUserTTL, cfg.Now)
		teams = tc
		if directory == nil {
			directory = tc
		}
	}
	if teams == nil {
		teams = noTeams{}
	}

	feedMetrics, err := feed.NewMetrics(rt.Registry())
	if err != nil {
		return err
	}
	answerMetrics, err := app.NewMetrics(rt.Registry())
	if err != nil {
		return err
	}
	buttons, err := card.NewButtons(cfg.Now, signed.ParseKeys(cfg.ShareButtonKey)...)
	if err != nil {
		return fmt.Errorf("SHARE_BUTTON_KEY: %w", err)
	}
	records, users := projection.New(), crmusers.New()
	svc := &app.Service{
		Records: records, Users: users, Directory: directory, Teams: teams,
		Render: render.Renderer{Card: card.Config{BaseURL: cfg.CRMBaseURL}, Buttons: buttons},
	}

	var loaded atomic.Bool
	gs := rt.GRPC()
	queryv1.RegisterQueryServiceServer(gs, grpcapi.New(svc, records, answerMetrics, log, loaded.Load))
	gs.Health.SetServingStatus(queryv1.QueryService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)

	applier := &feed.Applier{Records: records, Users: users, Log: log, Metrics: feedMetrics}
	answerLate := &late.Handler{Svc: svc, Pub: b.Publisher(), Commands: cfg.SlashCommands, Log: log, Metrics: answerMetrics, Now: cfg.Now}
	release := rt.HoldReady()
	live := &consumers{}
	rt.Check(live.healthy)
	rt.Part("projection", func(ctx context.Context) error {
		return runProjection(ctx, b, log, applier, answerLate, live, cfg.Rebuilding, func() {
			loaded.Store(true)
			gs.Health.SetServingStatus(queryv1.QueryService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
			log.InfoContext(ctx, "projection loaded", "crm_users", users.Count())
			release()
		})
	})
	return nil
}

// runProjection rebuilds memory from the snapshot streams, then starts the
// persister and the late-answer consumer, calls onReady, and keeps
// following until ctx ends.
func runProjection(ctx context.Context, b *bus.Bus, log *slog.Logger, applier *feed.Applier, lateHandler *late.Handler, live *consumers, rebuilding func(func() float64) func(), onReady func()) error {
	js := b.JetStream()
	start := time.Now()
	recordsW, err := snapshot.NewWriter(ctx, js, snapshot.StreamRecords)
	if err != nil {
		return err
	}
	applier.Schemas = recordsW
	recs, err := snapshot.FollowParallel(ctx, js, snapshot.StreamRecords, log, applier.PrepareRecord, applier.ApplyRecord)
	if err != nil {
		return err
	}
	rebuilt := func() {}
	if rebuilding != nil {
		// Once: at the end of the rebuild, or on the way out before it.
		rebuilt = sync.OnceFunc(rebuilding(recs.Progress))
		defer rebuilt()
	}
	stopCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), lifecycle.ShutdownTimeout)
	}
	defer func() {
		sctx, cancel := stopCtx()
		defer cancel()
		_ = recs.Stop(sctx)
	}()
	usrs, err := snapshot.Follow(ctx, js, snapshot.StreamUsers, log, applier.User)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := stopCtx()
		defer cancel()
		_ = usrs.Stop(sctx)
	}()
	for _, f := range []*snapshot.Following{recs, usrs} {
		select {
		case <-f.CaughtUp():
		case <-ctx.Done():
			return nil
		}
	}
	rebuilt()
	log.InfoContext(ctx, "projection rebuilt from snapshots", "records", recs.Applied(), "users", usrs.Applied(), "ms", time.Since(start).Milliseconds())
	// Tombstones an earlier build wrote with a TTL are made permanent, as
	// this build writes them: an imported batch is kept for ever and must
	// not outlive the delete that superseded it.
	keeping := make(chan struct{})
	defer func() { <-keeping }()
	go func() {
		defer close(keeping)
		if n, err := applier.KeepTombstones(ctx, recordsW); err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "keeping the tombstones of an earlier build failed; the next start tries again", "kept", n, "err", err)
		} else if n > 0 {
			log.InfoContext(ctx, "tombstones of an earlier build kept for ever", "kept", n)
		}
	}()

	usersW, err := snapshot.NewWriter(ctx, js, snapshot.StreamUsers)
	if err != nil {
		return err
	}
	subs, err := feed.Subscribe(ctx, b, feed.NewPersister(recordsW, usersW, applier.Metrics))
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := stopCtx()
		defer cancel()
		for _, s := range subs {
			if err := s.Stop(sctx); err != nil {
				log.Warn("stopping a consumer", "err", err)
			}
		}
	}()
	lateSub, err := bus.Subscribe(ctx, b, late.Spec(), lateHandler.Handle)
	if err != nil {
		return err
	}
	subs = append(subs, lateSub)
	live.set(subs)
	onReady()
	<-ctx.Done()
	return nil
}

// consumers are the subscriptions started once the projection is rebuilt;
// readiness includes their health (a consumer deleted on the server).
type consumers struct {
	mu   sync.Mutex
	subs []*bus.Subscription
}

func (c *consumers) set(subs []*bus.Subscription) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.subs = slices.Clone(subs)
}

func (c *consumers) healthy(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.subs {
		if err := s.Healthy(); err != nil {
			return err
		}
	}
	return nil
}

// noTeams is the TeamOrgs of a service without a team registry: only
// requests that carry their org can be answered.
type noTeams struct{}

func (noTeams) OrgsOfTeam(context.Context, string) ([]string, error) { return nil, nil }
