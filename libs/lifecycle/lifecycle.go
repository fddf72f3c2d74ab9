// Package lifecycle runs a service's parts (servers, consumers, loops) as one
// unit: they start together, the first to fail stops the others, and a
// cancelled context stops them all gracefully.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// Part is one long-running piece of a service. Run blocks until ctx is done
// or the part fails; returning nil after ctx is done is a clean stop.
type Part struct {
	Name string
	Run  func(ctx context.Context) error
}

// Run runs every part until ctx is cancelled or one part fails, then waits for
// all of them. A part that fails while ctx is still live is the error
// returned; a clean shutdown returns nil.
func Run(ctx context.Context, log *slog.Logger, parts ...Part) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, p := range parts {
		g.Go(func() error {
			err := p.Run(gctx)
			switch {
			case err == nil, errors.Is(err, context.Canceled) && gctx.Err() != nil:
				log.DebugContext(ctx, "part stopped", "part", p.Name)
				return nil
			default:
				log.ErrorContext(ctx, "part failed", "part", p.Name, "err", err)
				return fmt.Errorf("%s: %w", p.Name, err)
			}
		})
	}
	return g.Wait()
}

// ShutdownTimeout bounds how long a server may take to finish in-flight work
// once asked to stop.
const ShutdownTimeout = 10 * time.Second

// HTTPServer is a Part that serves srv on lis and shuts it down gracefully
// when ctx ends. http.ErrServerClosed is a clean stop.
func HTTPServer(name string, srv *http.Server, lis net.Listener) Part {
	return Part{Name: name, Run: func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(lis) }()
		select {
		case err := <-errc:
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return err
		case <-ctx.Done():
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			return fmt.Errorf("shutting down: %w", err)
		}
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}}
}

// Readiness is what /readyz reports: not ready until MarkReady, and not ready
// again once shutdown starts, so load balancers drain first.
type Readiness struct {
	ready  atomic.Bool
	checks []func(context.Context) error
}

// AddCheck adds a dependency check (a ping) that must pass for readiness.
func (r *Readiness) AddCheck(check func(context.Context) error) { r.checks = append(r.checks, check) }

// MarkReady flips readiness on or off.
func (r *Readiness) MarkReady(ready bool) { r.ready.Store(ready) }

// Check reports whether the service can take work.
func (r *Readiness) Check(ctx context.Context) error {
	if !r.ready.Load() {
		return errors.New("not ready")
	}
	for _, c := range r.checks {
		if err := c(ctx); err != nil {
			return err
		}
	}
	return nil
}
