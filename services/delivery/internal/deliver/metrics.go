package deliver

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Deliverer's Prometheus collectors.
type Metrics struct {
	calls          *prometheus.CounterVec
	reconciled     *prometheus.CounterVec
	tokenRefreshes prometheus.Counter
	renewedClaims  prometheus.Counter
}

// NewMetrics registers the collectors with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "crmslack", Subsystem: "delivery", Name: "slack_calls_total",
			Help: "Slack Web API calls by method and result (ok, rate_limited, temporary, ambiguous, auth, not_found, refused, unsupported, error; skipped: not made, its key paused by a 429).",
		}, []string{"method", "result"}),
		reconciled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "crmslack", Subsystem: "delivery", Name: "reconciled_total",
			Help: "Commands found claimed without a result, by what checking Slack showed (found, not_found, unconfirmed).",
		}, []string{"result"}),
		tokenRefreshes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "crmslack", Subsystem: "delivery", Name: "token_refreshes_total",
			Help: "Bot tokens refreshed after Slack refused one.",
		}),
		renewedClaims: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "crmslack", Subsystem: "delivery", Name: "claims_renewed_total",
			Help: "Ledger claims renewed before their call because the waits left their lease too little room for it.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.calls, err = register(reg, m.calls); err != nil {
		return nil, err
	}
	if m.reconciled, err = register(reg, m.reconciled); err != nil {
		return nil, err
	}
	if m.tokenRefreshes, err = register(reg, m.tokenRefreshes); err != nil {
		return nil, err
	}
	if m.renewedClaims, err = register(reg, m.renewedClaims); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// its name (a second Run on one registry shares them).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}
