package lifecycle

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestRunStopsEveryPartWhenOneFails(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	stopped := make(chan struct{})
	err := Run(context.Background(), quiet,
		Part{Name: "waiter", Run: func(ctx context.Context) error { <-ctx.Done(); close(stopped); return ctx.Err() }},
		Part{Name: "failer", Run: func(context.Context) error { return boom }},
	)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "failer") {
		t.Fatalf("err = %v, want failer: boom", err)
	}
	select {
	case <-stopped:
	default:
		t.Fatal("the other part was not stopped")
	}
}

func TestRunCleanShutdownIsNil(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Run(ctx, quiet, Part{Name: "p", Run: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }})
	if err != nil {
		t.Fatalf("err = %v", err)
	}
}

func TestHTTPServerServesOpsAndShutsDown(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ready := &Readiness{}
	reg := prometheus.NewRegistry()
	srv := &http.Server{Handler: OpsHandler(ready, reg), ReadHeaderTimeout: time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, quiet, HTTPServer("ops", srv, lis)) }()

	base := "http://" + lis.Addr().String()
	get := func(path string) int {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := get("/healthz"); c != 200 {
		t.Errorf("/healthz = %d", c)
	}
	if c := get("/readyz"); c != 503 {
		t.Errorf("/readyz before ready = %d", c)
	}
	ready.MarkReady(true)
	if c := get("/readyz"); c != 200 {
		t.Errorf("/readyz when ready = %d", c)
	}
	ready.AddCheck(func(context.Context) error { return errors.New("db down") })
	if c := get("/readyz"); c != 503 {
		t.Errorf("/readyz with a failing check = %d", c)
	}
	if c := get("/metrics"); c != 200 {
		t.Errorf("/metrics = %d", c)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}
