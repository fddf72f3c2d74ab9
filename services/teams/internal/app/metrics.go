package app

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the registry's own counters; a nil *Metrics counts nothing.
type Metrics struct {
	revocations *prometheus.CounterVec
}

// RegisterMetrics makes the service count into reg.
func (s *Service) RegisterMetrics(reg prometheus.Registerer) error {
	m := &Metrics{
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmslack_teams_token_revocations_total",
			Help: "auth.revoke calls made when an admin removes a team, by outcome (revoked, already_dead, failed, unreadable).",
		}, []string{"outcome"}),
	}
	for _, c := range []prometheus.Collector{m.revocations} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	s.metrics = m
	return nil
}

func (m *Metrics) revoked(outcome string) {
	if m != nil {
		m.revocations.WithLabelValues(outcome).Inc()
	}
}
