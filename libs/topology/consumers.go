package topology

import (
	"time"

	"github.com/crmslack/crmslack/libs/bus"
)

// InteractionConsumer is a service's consumer of Slack button clicks
// (interactions on SLACK_IN) under the durable name durable. Slack's
// response_url lives 30 minutes, so retrying beyond a few minutes is
// pointless: five deliveries over about 20 s, then the dead-letter subject.
// Every click of every team passes through each such consumer, and clicks
// on another service's buttons are acknowledged at once, so four handlers
// and 256 pending keep up.
func InteractionConsumer(durable string) bus.ConsumerSpec {
	return bus.ConsumerSpec{
		Stream:         StreamSlackIn,
		Durable:        durable,
		FilterSubjects: []string{SlackInteraction("*")},
		MaxDeliver:     5,
		BackOff:        []time.Duration{time.Second, 3 * time.Second, 5 * time.Second, 10 * time.Second},
		MaxAckPending:  256,
		Concurrency:    4,
	}
}

// OutcomeConsumer is a service's consumer of one kind of delivery outcome
// (outcome "succeeded" or "failed", on INTEGRATION) under the durable name
// durable. Every service's outcomes pass through, so each service keeps its
// own consumer; the default retry schedule (about an hour) rides out a
// database outage. How many it handles at once (concurrency, and
// maxAckPending across replicas) is the service's to choose.
func OutcomeConsumer(durable, outcome string, maxAckPending, concurrency int) bus.ConsumerSpec {
	return bus.ConsumerSpec{
		Stream:         StreamIntegration,
		Durable:        durable,
		FilterSubjects: []string{Delivery("*", outcome)},
		MaxDeliver:     bus.DefaultMaxDeliver,
		BackOff:        bus.DefaultBackOff(),
		MaxAckPending:  maxAckPending,
		Concurrency:    concurrency,
	}
}
