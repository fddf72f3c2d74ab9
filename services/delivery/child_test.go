package delivery_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/services/delivery"
)

// childEnv makes the test binary run delivery instead of the tests: the
// crash test starts it as a separate process and kills it with SIGKILL, a
// crash no in-process trick can imitate.
const childEnv = "DELIVERY_TEST_CHILD"

func runChild() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	env := envconfig.New()
	cfg := delivery.ConfigFromEnv(env)
	if err := env.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "child configuration:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := delivery.Run(ctx, cfg, log, prometheus.NewRegistry()); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}
