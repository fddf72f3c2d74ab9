package slackhttp

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// refusalLogEvery is how often each kind of refusal is logged: a flood of
// forged or malformed requests is counted in full but logged by sample.
const refusalLogEvery = time.Minute

// refusals counts refused requests by endpoint and reason and logs the
// first of each per minute, saying how many were left unlogged since.
type refusals struct {
	total *prometheus.CounterVec
	log   *slog.Logger
	now   func() time.Time

	mu      sync.Mutex
	samples map[[2]string]*sample
}

type sample struct {
	lim        *rate.Limiter
	suppressed int
}

func newRefusals(log *slog.Logger, now func() time.Time) *refusals {
	return &refusals{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmslack_gateway_slack_refused_total",
			Help: "Slack requests refused or answered with an error by endpoint and reason (too_large, unreadable, signature_missing, signature_malformed, signature_stale, signature_mismatch, bad_payload, response_url, invalid_utf8). Logged by sample: the first of each per minute.",
		}, []string{"endpoint", "reason"}),
		log: log, now: now, samples: map[[2]string]*sample{},
	}
}

// refuse counts one refusal and logs it when its sample is due; attrs must
// never hold a secret or a body.
func (r *refusals) refuse(ctx context.Context, endpoint, reason, msg string, attrs ...any) {
	r.total.WithLabelValues(endpoint, reason).Inc()
	key := [2]string{endpoint, reason}
	r.mu.Lock()
	s := r.samples[key]
	if s == nil {
		s = &sample{lim: rate.NewLimiter(rate.Every(refusalLogEvery), 1)}
		r.samples[key] = s
	}
	if !s.lim.AllowN(r.now(), 1) {
		s.suppressed++
		r.mu.Unlock()
		return
	}
	suppressed := s.suppressed
	s.suppressed = 0
	r.mu.Unlock()
	r.log.WarnContext(ctx, msg, append([]any{"endpoint", endpoint, "reason", reason, "unlogged_since_last", suppressed}, attrs...)...)
}
