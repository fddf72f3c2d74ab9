package delivery_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

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
	if path := os.Getenv(usageEnv); path != "" {
		go reportUsage(ctx, path)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := delivery.Run(ctx, cfg, log, prometheus.NewRegistry()); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

// usageEnv names the file a child writes its own usage to on each SIGUSR1,
// for the bench that measures delivery in a process of its own.
const usageEnv = "DELIVERY_TEST_USAGE"

// usage is a process's own account of itself.
type usage struct {
	Seq        int    // the how-manieth report
	TotalAlloc uint64 // bytes allocated so far
	Mallocs    uint64 // objects allocated so far
	CPU        time.Duration
	RSS        uint64 // resident set, bytes
	Live       uint64 // heap in use after a collection, bytes
}

// reportUsage writes the process's usage to path (whole, by a rename) each
// time it gets SIGUSR1.
func reportUsage(ctx context.Context, path string) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	defer signal.Stop(sig)
	for seq := 1; ; seq++ {
		select {
		case <-ctx.Done():
			return
		case <-sig:
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		u := usage{Seq: seq, TotalAlloc: ms.TotalAlloc, Mallocs: ms.Mallocs, CPU: cpuTime(), RSS: uint64(rssMB() * (1 << 20))}
		u.Live = liveHeap() // after the totals: the collection's own work is not counted
		b, _ := json.Marshal(u)
		if err := os.WriteFile(path+".tmp", b, 0o600); err == nil {
			_ = os.Rename(path+".tmp", path)
		}
	}
}
