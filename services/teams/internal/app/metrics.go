package app

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the registry's own counters; a nil *Metrics counts nothing.
type Metrics struct {
	revocations *prometheus.CounterVec
	reauth      *prometheus.CounterVec
	sealed      *prometheus.GaugeVec
}

// RegisterMetrics makes the service count into reg.
func (s *Service) RegisterMetrics(reg prometheus.Registerer) error {
	m := &Metrics{
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmslack_teams_token_revocations_total",
			Help: "auth.revoke calls made when an admin removes a team, by outcome (revoked, already_dead, failed, unreadable).",
		}, []string{"outcome"}),
		reauth: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmslack_teams_marked_needs_reauthorization_total",
			Help: "Teams marked as needing re-authorization because Slack refused their token, by Slack's error (token_revoked, invalid_auth, account_inactive, not_authed, invalid_refresh_token…). ListTeams shows them with status BROKEN until reinstalled.",
		}, []string{"slack_error"}),
		sealed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "crmslack_teams_sealed_rows",
			Help: "Stored team rows holding a token sealed under each key id, as of the last re-seal sweep; an old key of TEAMS_TOKEN_KEYS may be dropped once it counts 0.",
		}, []string{"key_id"}),
	}
	for _, c := range []prometheus.Collector{m.revocations, m.reauth, m.sealed} {
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

func (m *Metrics) markedForReauth(slackError string) {
	if m != nil {
		m.reauth.WithLabelValues(slackError).Inc()
	}
}

func (m *Metrics) sealedRows(use []KeyUse) {
	if m == nil {
		return
	}
	m.sealed.Reset()
	for _, u := range use {
		m.sealed.WithLabelValues(u.KeyID).Set(float64(u.Rows))
	}
}
