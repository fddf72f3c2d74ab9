package bus_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/testkit"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

// seen counts handled event ids.
type seen struct {
	mu  sync.Mutex
	ids map[string]int
}

func (s *seen) handle(_ context.Context, ev *crmv1.RecordUpserted) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids[ev.GetEnvelope().GetEventId()]++
	return nil
}

func (s *seen) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids)
}

// TestDeletedConsumerIsReportedAndRecreated deletes a subscription's
// durable consumer on the server: the subscription reports itself unhealthy
// within seconds, re-creates the consumer, is healthy again, and every
// message published before, during and after is handled.
func TestDeletedConsumerIsReportedAndRecreated(t *testing.T) {
	t.Parallel()
	srv := testkit.NATS(t)
	b, err := bus.Connect(testkit.Context(t), bus.Config{
		URL: srv.ClientURL(), Name: t.Name(), Logger: testkit.Logger(t), Registerer: prometheus.NewRegistry(), NATSOptions: []nats.Option{testkit.NATSLogin(t)},
		ConsumerCheckInterval: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	stream := streamName(t)
	ensureStream(t, b, stream)
	subject := stream + ".record.upserted"
	got := &seen{ids: map[string]int{}}
	spec := bus.ConsumerSpec{Stream: stream, Durable: "watched", MaxDeliver: 5, BackOff: []time.Duration{50 * time.Millisecond}}
	sub := subscribe(t, b, spec, got.handle)

	const batch = 20
	for i := range batch {
		publish(t, b, subject, newEvent(fmt.Sprintf("before-%d", i)))
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return got.distinct() == batch }, "first batch handled")
	if err := sub.Healthy(); err != nil {
		t.Fatalf("healthy consumer reports %v", err)
	}

	if err := b.JetStream().DeleteConsumer(testkit.Context(t), stream, spec.Durable); err != nil {
		t.Fatal(err)
	}
	for i := range batch {
		publish(t, b, subject, newEvent(fmt.Sprintf("during-%d", i)))
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return sub.Healthy() != nil }, "deleted consumer reported")
	t.Logf("while deleted: %v", sub.Healthy())
	testkit.Eventually(t, 10*time.Second, func() bool { return sub.Healthy() == nil }, "consumer re-created")
	if _, err := b.JetStream().Consumer(testkit.Context(t), stream, spec.Durable); err != nil {
		t.Fatalf("consumer not back on the server: %v", err)
	}
	for i := range batch {
		publish(t, b, subject, newEvent(fmt.Sprintf("after-%d", i)))
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return got.distinct() == 3*batch }, "every message handled")
}

// TestDeadLetterPublishFailureNaks makes the dead-letter publish fail (the
// dead-letter stream is gone): the message is nak'ed and redelivered, not
// terminated, and once the stream is back it is dead-lettered.
func TestDeadLetterPublishFailureNaks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	js := e.bus.JetStream()
	var mu sync.Mutex
	calls := 0
	spec := bus.ConsumerSpec{Stream: e.stream, Durable: "dlq-down", MaxDeliver: 50, BackOff: []time.Duration{100 * time.Millisecond}}
	subscribe(t, e.bus, spec, func(context.Context, *crmv1.RecordUpserted) error {
		mu.Lock()
		calls++
		mu.Unlock()
		return bus.Permanent(errors.New("bad record"))
	})
	if err := js.DeleteStream(testkit.Context(t), bus.DeadLetterStream); err != nil {
		t.Fatal(err)
	}
	publish(t, e.bus, e.subject(), newEvent("poison"))
	testkit.Eventually(t, 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return calls >= 3 },
		"redelivered after the dead-letter publish failed")

	if _, err := e.bus.EnsureDeadLetterStream(testkit.Context(t)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		st, err := js.Stream(testkit.Context(t), bus.DeadLetterStream)
		if err != nil {
			return false
		}
		m, err := st.GetLastMsgForSubject(testkit.Context(t), bus.DeadLetterSubject(e.stream, spec.Durable))
		return err == nil && m != nil
	}, "dead-lettered once the stream is back")
}
