package lifecycle

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/libs/logging"
)

// Config is a service's configuration: it can say what is wrong with it.
type Config interface{ Validate() error }

// Entry is a service's in-process entry point: the same Run the local
// runner calls.
type Entry[C Config] struct {
	Name string
	Load func(*envconfig.Loader) C
	Run  func(ctx context.Context, cfg C, log *slog.Logger, reg prometheus.Registerer) error
}

// Main is the whole of a service's main function: read and validate the
// configuration from the environment, log to stderr, run until SIGINT or
// SIGTERM. It exits 2 on bad configuration, 1 when the service fails and 0
// on a clean stop.
func Main[C Config](e Entry[C]) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := e.main(ctx, envconfig.New(), os.Stderr)
	stop()
	os.Exit(code)
}

func (e Entry[C]) main(ctx context.Context, env *envconfig.Loader, stderr io.Writer) int {
	logCfg := logging.ConfigFromEnv(env)
	cfg := e.Load(env)
	err := env.Err()
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: configuration:\n%v\n", e.Name, err)
		return 2
	}
	log := logging.New(stderr, logCfg)
	if err := e.Run(ctx, cfg, log, NewRegistry()); err != nil {
		log.Error(e.Name+" stopped", "err", err)
		return 1
	}
	return 0
}

// NewRegistry is a service's metrics registry: its own series plus the Go
// runtime's and the process's.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
