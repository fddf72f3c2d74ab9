package signals

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics implements app.Metrics.
type metrics struct {
	handled     *prometheus.CounterVec
	unreachable prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmslack_signals_handled_total",
			Help: "Sales signals handled, by result: posted, grouped (joined a message), disabled (cell off), duplicate, owner_unreachable, integration_off.",
		}, []string{"result"}),
		unreachable: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "crmslack_signals_owners_unreachable_total",
			Help: "Record owners reported (once each) as having no Slack account in their org's teams.",
		}),
	}
	for _, c := range []prometheus.Collector{m.handled, m.unreachable} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) Signal(result string) { m.handled.WithLabelValues(result).Inc() }
func (m *metrics) Unreachable()         { m.unreachable.Inc() }
