package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/services/delivery"
	"github.com/crmslack/crmslack/services/gateway"
	"github.com/crmslack/crmslack/services/teams"
)

// runFunc is a service's exported Run with its configuration bound.
type runFunc func(ctx context.Context, log *slog.Logger, reg prometheus.Registerer) error

// service is one service the runner starts: build reads and validates its
// configuration and describes where it listens.
type service struct {
	name  string
	build func(env *envconfig.Loader) (runFunc, string, error)
}

// services lists every service the runner starts. The team registry comes
// first: it creates the org_access bucket the others watch.
var services = []service{
	{"teams", func(env *envconfig.Loader) (runFunc, string, error) {
		cfg := teams.ConfigFromEnv(env)
		if err := cfg.Validate(); err != nil {
			return nil, "", err
		}
		return func(ctx context.Context, log *slog.Logger, reg prometheus.Registerer) error {
			return teams.Run(ctx, cfg, log, reg)
		}, fmt.Sprintf("gRPC %s, ops http://%s", cfg.GRPCAddr, cfg.OpsAddr), nil
	}},
	{"gateway", func(env *envconfig.Loader) (runFunc, string, error) {
		cfg := gateway.ConfigFromEnv(env)
		if err := cfg.Validate(); err != nil {
			return nil, "", err
		}
		return func(ctx context.Context, log *slog.Logger, reg prometheus.Registerer) error {
			return gateway.Run(ctx, cfg, log, reg)
		}, fmt.Sprintf("Slack endpoints %s/slack/…, ops http://%s", cfg.PublicURL, cfg.OpsAddr), nil
	}}, {"delivery", func(env *envconfig.Loader) (runFunc, string, error) {
		cfg := delivery.ConfigFromEnv(env)
		if err := cfg.Validate(); err != nil {
			return nil, "", err
		}
		return func(ctx context.Context, log *slog.Logger, reg prometheus.Registerer) error {
			return delivery.Run(ctx, cfg, log, reg)
		}, fmt.Sprintf("gRPC %s, ops http://%s", cfg.GRPCAddr, cfg.OpsAddr), nil
	}},
}
