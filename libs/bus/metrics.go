package bus

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of one delivery, the "outcome" label of
// crmslack_bus_handled_total.
const (
	OutcomeAck   = "ack"   // handler returned nil
	OutcomeNak   = "nak"   // temporary error: redelivered after a delay
	OutcomePanic = "panic" // handler panicked: redelivered after a delay
	OutcomeDLQ   = "dlq"   // dead-lettered and terminated
	OutcomeTerm  = "term"  // terminated without dead-lettering (ConsumerSpec.DisableDeadLetter)
	// OutcomeRetryInPlace: the bus or store was unavailable; the handler is
	// re-run within the same delivery.
	OutcomeRetryInPlace = "retry_in_place"
)

type metrics struct {
	handled    *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	apiRetries prometheus.Counter
}

// newMetrics builds the collectors and registers them with reg when it is
// not nil. Several buses on one registry share the collectors.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "crmslack",
			Subsystem: "bus",
			Name:      "handled_total",
			Help:      "Message deliveries handled, by stream, consumer and outcome (ack, nak, panic, dlq, term).",
		}, []string{"stream", "consumer", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "crmslack",
			Subsystem: "bus",
			Name:      "handler_duration_seconds",
			Help:      "Time spent in message handlers, by stream and consumer.",
			// 0.5 ms to ~33 s: from an in-memory projection update to a
			// handler that waits out a Slack rate limit.
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9),
		}, []string{"stream", "consumer"}),
		apiRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "crmslack",
			Subsystem: "bus",
			Name:      "api_retries_total",
			Help:      "Stream, consumer and bucket creations repeated after a timeout or a temporarily unavailable answer.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.handled, err = register(reg, m.handled); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.apiRetries, err = register(reg, m.apiRetries); err != nil {
		return nil, err
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("bus: registering metrics: %w", err)
	}
	return c, nil
}
