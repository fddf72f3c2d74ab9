// Package inbound subscribes the signals service's handlers to the bus:
// the sales signals, and the egress's outcomes of its own commands.
package inbound

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/topology"

	"github.com/crmslack/crmslack/services/signals/internal/app"
	"github.com/crmslack/crmslack/services/signals/internal/lanes"
)

// Consumer is a running consumer.
type Consumer interface {
	Stop(ctx context.Context) error
}

// Subscribe starts the consumers, by name; the caller stops them. Signals
// go through lanes by owner (org and email): each owner's in stream order.
func Subscribe(ctx context.Context, b *bus.Bus, svc *app.Service, lanesN int, reg prometheus.Registerer, log *slog.Logger) (map[string]Consumer, error) {
	subs := map[string]Consumer{}
	fail := func(err error) (map[string]Consumer, error) {
		for _, s := range subs {
			_ = s.Stop(ctx)
		}
		return nil, err
	}
	// The default handler time (27 s) leaves room for a slow directory
	// read; MaxAckPending holds every lane's buffer.
	signals, err := lanes.Start(ctx, b, lanes.Config{
		Spec: bus.ConsumerSpec{
			Stream: topology.StreamCRM, Durable: topology.DurableSignals,
			FilterSubjects: []string{topology.SalesSignals},
			MaxDeliver:     bus.DefaultMaxDeliver, BackOff: bus.DefaultBackOff(),
			MaxAckPending: 4096,
		},
		Lanes: lanesN,
	}, reg, log, app.OwnerKey, svc.HandleSignal)
	if err != nil {
		return fail(fmt.Errorf("subscribing to sales signals: %w", err))
	}
	subs["sales-signals"] = signals
	// Outcomes of every service's commands pass here; only this service's
	// posts are acted on, cheaply, so several handlers run at once.
	delivered, err := bus.Subscribe(ctx, b,
		topology.OutcomeConsumer(topology.DurableSignalsDelivered, "succeeded", 1000, 4), svc.HandleDelivered)
	if err != nil {
		return fail(fmt.Errorf("subscribing to delivery successes: %w", err))
	}
	subs["delivery-succeeded"] = delivered
	failed, err := bus.Subscribe(ctx, b,
		topology.OutcomeConsumer(topology.DurableSignalsFailed, "failed", 1000, 2), svc.HandleFailed)
	if err != nil {
		return fail(fmt.Errorf("subscribing to delivery failures: %w", err))
	}
	subs["delivery-failed"] = failed
	return subs, nil
}
