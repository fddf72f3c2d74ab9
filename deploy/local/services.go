package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/libs/lifecycle"
	"github.com/crmslack/crmslack/services/console"
	"github.com/crmslack/crmslack/services/delivery"
	"github.com/crmslack/crmslack/services/gateway"
	"github.com/crmslack/crmslack/services/query"
	"github.com/crmslack/crmslack/services/reminders"
	"github.com/crmslack/crmslack/services/sharing"
	"github.com/crmslack/crmslack/services/signals"
	"github.com/crmslack/crmslack/services/teams"
	"github.com/crmslack/crmslack/services/workflows"
)

// runFunc is a service's exported Run with its configuration bound.
type runFunc func(ctx context.Context, log *slog.Logger, reg prometheus.Registerer) error

// service is one service the runner starts: build reads and validates its
// configuration and describes where it listens.
type service struct {
	name  string
	build func(env *envconfig.Loader) (runFunc, string, error)
}

// of makes a service of a service's entry point (the same one its own main
// runs) and a description of where it listens.
func of[C lifecycle.Config](e lifecycle.Entry[C], where func(C) string) service {
	return service{name: e.Name, build: func(env *envconfig.Loader) (runFunc, string, error) {
		cfg := e.Load(env)
		if err := cfg.Validate(); err != nil {
			return nil, "", err
		}
		return func(ctx context.Context, log *slog.Logger, reg prometheus.Registerer) error {
			return e.Run(ctx, cfg, log, reg)
		}, where(cfg), nil
	}}
}

func grpcAndOps(grpc, ops string) string { return fmt.Sprintf("gRPC %s, ops http://%s", grpc, ops) }

// services lists every service the runner starts. The team registry comes
// first: it creates the org_access bucket the others watch.
var services = []service{
	of(lifecycle.Entry[teams.Config]{Name: "teams", Load: teams.ConfigFromEnv, Run: teams.Run},
		func(c teams.Config) string { return grpcAndOps(c.GRPCAddr, c.OpsAddr) }),
	of(lifecycle.Entry[gateway.Config]{Name: "gateway", Load: gateway.ConfigFromEnv, Run: gateway.Run},
		func(c gateway.Config) string {
			return fmt.Sprintf("Slack endpoints %s/slack/…, ops http://%s", c.PublicURL, c.OpsAddr)
		}),
	of(lifecycle.Entry[delivery.Config]{Name: "delivery", Load: delivery.ConfigFromEnv, Run: delivery.Run},
		func(c delivery.Config) string { return grpcAndOps(c.GRPCAddr, c.OpsAddr) }),
	of(lifecycle.Entry[query.Config]{Name: "query", Load: query.ConfigFromEnv, Run: query.Run},
		func(c query.Config) string { return grpcAndOps(c.GRPCAddr, c.OpsAddr) }),
	of(lifecycle.Entry[sharing.Config]{Name: "sharing", Load: sharing.ConfigFromEnv, Run: sharing.Run},
		func(c sharing.Config) string { return grpcAndOps(c.GRPCAddr, c.OpsAddr) }),
	of(lifecycle.Entry[workflows.Config]{Name: "workflows", Load: workflows.ConfigFromEnv, Run: workflows.Run},
		func(c workflows.Config) string { return grpcAndOps(c.GRPCAddr, c.OpsAddr) }),
	of(lifecycle.Entry[signals.Config]{Name: "signals", Load: signals.ConfigFromEnv, Run: signals.Run},
		func(c signals.Config) string { return grpcAndOps(c.GRPCAddr, c.OpsAddr) }),
	of(lifecycle.Entry[reminders.Config]{Name: "reminders", Load: reminders.ConfigFromEnv, Run: reminders.Run},
		func(c reminders.Config) string { return grpcAndOps(c.GRPCAddr, c.OpsAddr) }),
	of(lifecycle.Entry[console.Config]{Name: "console", Load: console.ConfigFromEnv, Run: console.Run},
		func(c console.Config) string {
			return fmt.Sprintf("admin console %s/ (sign in at /login), ops http://%s", strings.TrimSuffix(c.PublicURL, "/"), c.OpsAddr)
		}),
}
