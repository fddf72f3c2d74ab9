// Package inbound is sharing's NATS side: the durable consumers that take
// shares asked for through the bus, clicks on "Share this record", and the
// delivery outcomes of the commands sharing sent. Each hands its event to
// the app layer and follows libs/bus's handler contract.
package inbound

import (
	"context"
	"fmt"
	"time"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/topology"

	"github.com/crmslack/crmslack/services/sharing/internal/app"
)

// Durable consumer names. Each is a contract: renaming one replays its
// stream (the share ids and the egress's idempotency keys would keep the
// replay from posting twice, but it would be wasted work).
const (
	DurableRecordRequests = "sharing-record-requests"
	DurableChartRequests  = "sharing-chart-requests"
	DurableInteractions   = "sharing-interactions"
	DurableSucceeded      = "sharing-delivery-succeeded"
	DurableFailed         = "sharing-delivery-failed"
)

// RequestSpec is the consumer of shares asked for through the bus. A
// handler reads a record from the query service, a directory from the
// team registry and may render a chart: 54 s of handler time covers a
// cold directory read. Ten deliveries with the default back-off retry for
// about two minutes, after which a request is too old to share anyway
// (app.Config.RequestMaxAge refuses it). Four at a time: chart rendering
// is CPU-bound and the service shares two cores with others.
func RequestSpec(durable, kind string) bus.ConsumerSpec {
	return bus.ConsumerSpec{
		Stream:         topology.StreamCRM,
		Durable:        durable,
		FilterSubjects: []string{topology.ShareRequested("*", kind)},
		HandlerTimeout: 54 * time.Second,
		MaxDeliver:     10,
		BackOff:        []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second},
		MaxAckPending:  256,
		Concurrency:    4,
	}
}

// Button clicks take topology.InteractionConsumer's settings (Slack's
// response_url lives 30 minutes). Delivery outcomes take
// topology.OutcomeConsumer's, two at a time with one insert each.
const outcomePending, outcomeConcurrency = 1000, 2

// Subscribe starts every consumer. On error the ones started are stopped.
func Subscribe(ctx context.Context, b *bus.Bus, svc *app.Service) ([]*bus.Subscription, error) {
	subs, err := bus.SubscribeAll(ctx,
		bus.Bind(b, RequestSpec(DurableRecordRequests, "record"), svc.HandleShareRecordRequested),
		bus.Bind(b, RequestSpec(DurableChartRequests, "chart"), svc.HandleShareChartRequested),
		bus.Bind(b, topology.InteractionConsumer(DurableInteractions), svc.ShareFromButton),
		bus.Bind(b, topology.OutcomeConsumer(DurableSucceeded, "succeeded", outcomePending, outcomeConcurrency), svc.HandleDeliverySucceeded),
		bus.Bind(b, topology.OutcomeConsumer(DurableFailed, "failed", outcomePending, outcomeConcurrency), svc.HandleDeliveryFailed),
	)
	if err != nil {
		return nil, fmt.Errorf("subscribing: %w", err)
	}
	return subs, nil
}
