package main

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmslack/crmslack/libs/envconfig"
)

// runFunc is a service's exported Run with its configuration bound.
type runFunc func(ctx context.Context, log *slog.Logger, reg prometheus.Registerer) error

// service is one service the runner starts: build reads and validates its
// configuration and describes where it listens.
type service struct {
	name  string
	build func(env *envconfig.Loader) (runFunc, string, error)
}

// localDefaults are the addresses and development keys the services get
// under `make run` when the environment sets none.
var localDefaults = map[string]string{}

// services lists every service the runner starts, in start order.
var services = []service{}
