package reminders

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics implements app.Metrics with Prometheus.
type metrics struct {
	sent     *prometheus.CounterVec
	dropped  *prometheus.CounterVec
	lateness prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmslack_reminders_sent_total",
			Help: "Reminders handed to the Slack egress, by whether they were late (due while reminders were down).",
		}, []string{"late"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmslack_reminders_dropped_total",
			Help: "Fired reminders not sent, by reason (started: due during downtime and the activity had begun; cancelled, completed, stale, preference_off, team_unavailable, not_recipient, unknown_activity).",
		}, []string{"reason"}),
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "crmslack_reminders_lateness_seconds",
			Help:    "From a reminder's due time to its hand-over to the Slack egress.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600},
		}),
	}
	for _, c := range []prometheus.Collector{m.sent, m.dropped, m.lateness} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) Sent(late bool, lateness time.Duration) {
	m.sent.WithLabelValues(fmt.Sprint(late)).Inc()
	m.lateness.Observe(lateness.Seconds())
}

func (m *metrics) Dropped(reason string) { m.dropped.WithLabelValues(reason).Inc() }
