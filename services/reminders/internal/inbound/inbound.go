// Package inbound is reminders' NATS side: the durable consumers of the
// CRM's activity events, of fired reminders and of button clicks. Each
// hands its event to the app layer and follows libs/bus's handler
// contract.
package inbound

import (
	"context"
	"fmt"
	"time"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/topology"

	"github.com/crmslack/crmslack/services/reminders/internal/app"
)

// Durable consumer names. Each is a contract: renaming one replays its
// stream (versions and idempotency keys keep a replay from posting twice,
// but it would be wasted work).
const (
	DurableScheduled    = "reminders-activity-scheduled"
	DurableUpdated      = "reminders-activity-updated"
	DurableCancelled    = "reminders-activity-cancelled"
	DurableCompleted    = "reminders-activity-completed"
	DurableDue          = "reminders-due"
	DurableInteractions = "reminders-interactions"
)

// ActivitySpec is the consumer of one kind of activity change. A handler
// does a read and a compare-and-set of the activity's state and a few
// timer publishes: milliseconds. The default retry schedule (about an
// hour) rides out an outage; 32 at a time per replica (a CRM importing a
// calendar sends thousands at once), since versions and compare-and-set
// make the order irrelevant.
func ActivitySpec(durable, change string) bus.ConsumerSpec {
	return bus.ConsumerSpec{
		Stream:         topology.StreamCRM,
		Durable:        durable,
		FilterSubjects: []string{topology.Activity("*", change)},
		MaxDeliver:     bus.DefaultMaxDeliver,
		BackOff:        bus.DefaultBackOff(),
		MaxAckPending:  4096,
		Concurrency:    32,
	}
}

// DueSpec is the consumer of fired reminders, the hot path: 100,000 due in
// one minute is the design load. Each is a key-value read and one publish,
// so 32 at a time per replica keep up; MaxAckPending lets a burst flow
// without waiting on acks. A reminder is worth little minutes late, so
// retries are short: ten deliveries over about two minutes, then the
// dead-letter subject.
func DueSpec() bus.ConsumerSpec {
	return bus.ConsumerSpec{
		Stream:         topology.StreamReminders,
		Durable:        DurableDue,
		FilterSubjects: []string{topology.ReminderDue("*")},
		MaxDeliver:     10,
		BackOff:        []time.Duration{200 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second},
		MaxAckPending:  8192,
		Concurrency:    32,
	}
}

// Subscribe starts every consumer. On error the ones started are stopped.
func Subscribe(ctx context.Context, b *bus.Bus, svc *app.Service) ([]*bus.Subscription, error) {
	subs, err := bus.SubscribeAll(ctx,
		bus.Bind(b, ActivitySpec(DurableScheduled, "scheduled"), svc.HandleActivityScheduled),
		bus.Bind(b, ActivitySpec(DurableUpdated, "updated"), svc.HandleActivityUpdated),
		bus.Bind(b, ActivitySpec(DurableCancelled, "cancelled"), svc.HandleActivityCancelled),
		bus.Bind(b, ActivitySpec(DurableCompleted, "completed"), svc.HandleActivityCompleted),
		bus.Bind(b, DueSpec(), svc.HandleReminderDue),
		bus.Bind(b, topology.InteractionConsumer(DurableInteractions), svc.HandleInteraction),
	)
	if err != nil {
		return nil, fmt.Errorf("subscribing: %w", err)
	}
	return subs, nil
}
