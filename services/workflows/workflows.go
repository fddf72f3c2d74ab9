// Package workflows runs the CRM's workflow rules' "Notify via Slack"
// instant actions. Run is its in-process entry point, used by
// cmd/workflows, the local runner and tests.
//
// It serves workflows.v1.WorkflowActionsService over gRPC (admins keep a
// rule's actions: template, team, users or channels, card, owner DM) and
// consumes crm.v1.WorkflowRuleTriggered: every action of the fired rule is
// rendered and handed to the Slack egress as slack.v1.PostMessage commands
// on slack.out.v1.<org>.<team>.post, one per target, whose ids derive from
// the trigger's event id, so a trigger delivered twice posts once. Actions,
// the latest schema of each module (from record upserts and triggers) and
// the orgs' formats live in the JetStream bucket "workflows", held in
// memory; history (firings and the egress's outcomes) is inserted in
// batches into MongoDB. A removed team's actions are deleted
// (workflows.v1.WorkflowActionsRemoved says which rules lost some); with
// the integration disabled nothing fires (org_access bucket, in memory).
package workflows

import (
	"context"
	"errors"
	"fmt"
	"time"

	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/card"
	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/libs/identity"
	"github.com/crmslack/crmslack/libs/orgaccess"
	"github.com/crmslack/crmslack/libs/service"
	"github.com/crmslack/crmslack/libs/topology"

	"github.com/crmslack/crmslack/services/workflows/internal/access"
	"github.com/crmslack/crmslack/services/workflows/internal/app"
	"github.com/crmslack/crmslack/services/workflows/internal/grpcapi"
	"github.com/crmslack/crmslack/services/workflows/internal/history"
	"github.com/crmslack/crmslack/services/workflows/internal/inbound"
	"github.com/crmslack/crmslack/services/workflows/internal/kvstore"
	"github.com/crmslack/crmslack/services/workflows/internal/readmodel"
	"github.com/crmslack/crmslack/services/workflows/internal/remote"
)

// Config is the service's configuration. Each field names its variable and
// default.
type Config struct {
	// Connections are the trust files, NATS_URL, NATS_REPLICAS (of the
	// streams and the "workflows" bucket it ensures), MONGODB_URI,
	// WORKFLOWS_MONGODB_DATABASE (the history, default "workflows"),
	// WORKFLOWS_GRPC_ADDR (WorkflowActionsService, default 127.0.0.1:9105)
	// and WORKFLOWS_OPS_ADDR (default 127.0.0.1:9205); see libs/service.
	service.Connections
	// TeamsAddr is TEAMS_ADDR, the team registry's gRPC address
	// (ListTeams, ListDirectory, asked when an action is saved). Default
	// 127.0.0.1:9101.
	TeamsAddr string
	// CRMBaseURL is CRM_BASE_URL, the CRM's web UI: #{Record.Link} and the
	// card's "Open in CRM" of records that carry no URL of their own are
	// <it>/<module>/<id>. Empty (the default): such records get no link.
	CRMBaseURL string

	// Ready, not from the environment, is called once the service serves,
	// with the addresses it bound (tests listen on port 0).
	Ready func(Addrs)
	// Now, not from the environment, is the clock. Default time.Now.
	Now func() time.Time
}

// Addrs are the bound listen addresses.
type Addrs = service.Addrs

// vars are the service's own connection variables and their defaults.
var vars = service.Vars{Prefix: "WORKFLOWS", Database: "workflows", GRPCAddr: "127.0.0.1:9105", OpsAddr: "127.0.0.1:9205"}

// ConfigFromEnv reads the configuration; problems are recorded in l.
func ConfigFromEnv(l *envconfig.Loader) Config {
	return Config{
		Connections: vars.FromEnv(l),
		TeamsAddr:   l.String("TEAMS_ADDR", "127.0.0.1:9101"),
		CRMBaseURL:  l.URL("CRM_BASE_URL", "", "http", "https"),
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
	return p.Err()
}

// Run runs the service until ctx ends; a clean stop returns nil.
func Run(ctx context.Context, cfg Config, log *slog.Logger, reg prometheus.Registerer) error {
	return service.Run(ctx, service.Spec{
		Name: "workflows", Config: cfg, Log: log, Registry: reg, Vars: vars,
		Store: &service.Store{Indexes: history.Indexes()},
		Bus:   &service.Bus{Streams: []string{topology.StreamCRM, topology.StreamIntegration, topology.StreamSlackOut}},
		Build: func(ctx context.Context, rt *service.Runtime) error { return build(ctx, cfg, rt) },
		Ready: service.ReadyAddrs(cfg.Ready),
	})
}

// build wires the core on the store and bus.
func build(ctx context.Context, cfg Config, rt *service.Runtime) error {
	log := rt.Log()
	kv, err := bus.BindKeyValue(ctx, rt.Bus.JetStream(), kvstore.BucketConfig(cfg.NATSReplicas))
	if err != nil {
		return err
	}
	teamsConn, err := rt.Dial("TEAMS_ADDR", cfg.TeamsAddr, identity.Teams)
	if err != nil {
		return err
	}
	fired := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crmslack_workflows_messages_total",
		Help: "Messages handed to the Slack egress by rule firings (result sent), and firings of rules without actions (result none).",
	}, []string{"result"})
	if err := rt.Registry().Register(fired); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}

	model := readmodel.New()
	view := access.New()
	hist := history.New(rt.Store.DB())
	svc := app.New(app.Config{Card: card.Config{BaseURL: cfg.CRMBaseURL}, Now: cfg.Now,
		Fired: func(result string, n int) { fired.WithLabelValues(result).Add(float64(n)) }},
		view, remote.NewTeams(teamsConn), model, kvstore.New(kv), rt.Bus, hist, log)

	// The history writer outlives the consumers: its closer, registered
	// first, runs after they are drained, so that handlers finishing on the
	// way out can still record what they did.
	wctx, stopWriter := context.WithCancel(context.WithoutCancel(ctx))
	written := make(chan error, 1)
	go func() { written <- hist.Run(wctx) }()
	rt.OnClose("history-writer", func(context.Context) error { stopWriter(); return <-written })

	// Handlers wait (a temporary error, retried) until the actions and the
	// orgs' access are loaded: a trigger handled earlier would find no
	// actions and post nothing.
	subs, err := inbound.Subscribe(ctx, rt.Bus, svc)
	for _, s := range subs {
		rt.Consumer(s.Durable(), s)
	}
	if err != nil {
		return err
	}
	rt.Check(func(context.Context) error {
		switch {
		case !model.Synced():
			return errors.New("workflow actions not loaded yet")
		case !view.Synced():
			return errors.New("org access not loaded yet (is the team registry up?)")
		}
		return nil
	})
	rt.Part("actions", func(ctx context.Context) error { return kvstore.Follow(ctx, kv, model, time.Second, log) })
	rt.Part("org-access", func(ctx context.Context) error {
		return orgaccess.Follow(ctx, rt.Bus.JetStream(), view, time.Second, log)
	})
	grpcapi.Register(rt.GRPC(), grpcapi.New(svc))
	return nil
}
