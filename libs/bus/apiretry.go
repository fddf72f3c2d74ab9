package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Back-off between attempts of a creation: from apiRetryWait, doubling, to
// apiRetryMaxWait.
const (
	apiRetryWait    = 250 * time.Millisecond
	apiRetryMaxWait = 4 * time.Second
)

// retrying is how a creation is repeated: attempts in all, each bounded by
// timeout; each repeat is logged and counted (retried may be nil).
type retrying struct {
	attempts int
	timeout  time.Duration
	log      *slog.Logger
	retried  prometheus.Counter
}

func (b *Bus) retrying() retrying {
	return retrying{attempts: b.cfg.APIAttempts, timeout: b.cfg.APIAttemptTimeout, log: b.log, retried: b.metrics.apiRetries}
}

// createWithRetry runs create (a stream, consumer or bucket creation, each
// idempotent: repeating it creates nothing twice) with each attempt bounded
// by r's timeout, repeating one that timed out or that the server answered
// as temporarily unavailable, up to r's attempts in all. nats.go has no
// retry of its own for these requests, and a fresh cluster can leave one of
// several simultaneous creations unanswered (nats-io/nats-server#3677).
func createWithRetry[T any](ctx context.Context, r retrying, what string, create func(context.Context) (T, error)) (T, error) {
	wait := apiRetryWait
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, r.timeout)
		v, err := create(actx)
		cancel()
		if err == nil || ctx.Err() != nil || attempt >= r.attempts || !temporaryAPIError(err) {
			if err != nil && attempt > 1 {
				err = fmt.Errorf("after %d attempts: %w", attempt, err)
			}
			return v, err
		}
		if r.retried != nil {
			r.retried.Inc()
		}
		r.log.Warn("JetStream creation not answered; retrying", "what", what, "attempt", attempt, "error", err)
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("after %d attempts: %w", attempt, err)
		case <-time.After(wait):
		}
		wait = min(2*wait, apiRetryMaxWait)
	}
}

// temporaryAPIError reports whether err is a JetStream API request that may
// succeed if repeated: no answer in time, or the server's 503 (no meta
// leader yet, or the cluster not available).
func temporaryAPIError(err error) bool {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return true
	case errors.As(err, &apiErr):
		return apiErr.Code == http.StatusServiceUnavailable
	}
	return false
}
