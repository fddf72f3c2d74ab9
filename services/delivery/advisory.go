package delivery

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/topology"

	"github.com/crmslack/crmslack/services/delivery/internal/command"
	"github.com/crmslack/crmslack/services/delivery/internal/deliver"
	"github.com/crmslack/crmslack/services/delivery/internal/failure"
	"github.com/crmslack/crmslack/services/delivery/internal/outcome"
	"github.com/crmslack/crmslack/services/delivery/internal/partition"
)

// watchMaxDeliveries has libs/bus dead-letter a command the server stopped
// delivering (every delivery ended without a verdict: a crash loop) and
// reports it failed. The replicas listen as one queue group, so one of them
// handles each; the mover's consumer is left to itself.
func (s *settler) watchMaxDeliveries(ctx context.Context, maxDeliver int) (*nats.Subscription, error) {
	reason := func(deliveries uint64) string {
		return fmt.Sprintf("delivered %d times (DELIVERY_MAX_DELIVER %d) without being settled", deliveries, maxDeliver)
	}
	return s.bus.WatchMaxDeliveries(ctx, bus.MaxDeliveriesWatch{
		Stream: topology.StreamSlackOut,
		Queue:  "delivery",
		Accept: func(consumer string) bool { _, ok := partition.FromDurable(consumer); return ok },
		Reason: reason,
		Then: func(ctx context.Context, g bus.GaveUp) {
			s.reportGaveUp(ctx, g, reason(g.Deliveries))
		},
		Logger: s.log,
	})
}

// reportGaveUp publishes the failed outcome of a dead-lettered command; a
// repeated advisory re-reports, de-duplicated by the outcome's event id.
func (s *settler) reportGaveUp(ctx context.Context, g bus.GaveUp, reason string) {
	cmd, err := command.Decode(g.Msg.Subject, g.Msg.Data)
	if cmd == nil {
		s.log.ErrorContext(ctx, "max deliveries: undecodable command dead-lettered", "stream_seq", g.Msg.Sequence, "err", err)
		return
	}
	out := deliver.Outcome{Failure: failure.New(failure.RetriesExhausted, "%s", reason), Attempts: uint32(g.Deliveries)}
	subject, ev := outcome.Event(cmd, out, s.now())
	ack, err := s.bus.Publish(ctx, subject, ev)
	if err != nil {
		s.log.ErrorContext(ctx, "max deliveries: reporting the failure", "command", cmd.ID, "err", err)
		return
	}
	if ack.Duplicate {
		return // reported already, by a delivery that wrote its row
	}
	if err := s.waitRow(s.rows.Add(rowOf(ev))); err != nil {
		s.log.ErrorContext(ctx, "max deliveries: writing the audit row failed; the outcome is reported, its row is missing", "command", cmd.ID, "err", err)
	}
}
