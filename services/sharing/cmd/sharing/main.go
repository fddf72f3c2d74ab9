// Command sharing runs the sharing service. Configuration comes from the
// environment; see docs/configuration.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/libs/logging"
	"github.com/crmslack/crmslack/services/sharing"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env := envconfig.New()
	logCfg := logging.ConfigFromEnv(env)
	cfg := sharing.ConfigFromEnv(env)
	if err := env.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "sharing: configuration:\n%v\n", err)
		os.Exit(2)
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "sharing: configuration:\n%v\n", err)
		os.Exit(2)
	}
	log := logging.New(os.Stderr, logCfg)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := sharing.Run(ctx, cfg, log, reg); err != nil {
		log.Error("sharing stopped", "err", err)
		os.Exit(1)
	}
}
