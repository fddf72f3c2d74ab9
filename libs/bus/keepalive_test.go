package bus_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/bus"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

// TestHeldMessagesKeptAlive: messages a replica holds behind a slow handler
// wait three times their AckWait and are still handled once each, on their
// first delivery: the replica renews them, so a short AckWait costs nothing
// but bounds how long a killed replica's messages wait for another.
func TestHeldMessagesKeptAlive(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const n = 5
	var mu sync.Mutex
	deliveries := map[string][]uint64{}
	s := subscribe(t, e.bus, bus.ConsumerSpec{Stream: e.stream, Durable: "patient", AckWait: time.Second, HandlerTimeout: 10 * time.Second},
		func(ctx context.Context, ev *crmv1.RecordUpserted) error {
			info, _ := bus.MessageInfo(ctx)
			mu.Lock()
			deliveries[ev.GetEnvelope().GetEventId()] = append(deliveries[ev.GetEnvelope().GetEventId()], info.NumDelivered)
			first := len(deliveries) == 1
			mu.Unlock()
			if first {
				time.Sleep(3 * time.Second) // the others wait, held, behind it
			}
			return nil
		})
	for i := range n {
		publish(t, e.bus, e.subject(), newEvent(fmt.Sprintf("evt-held-%d", i)))
	}
	waitSettled(t, e.bus, e.stream, "patient")
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range n {
		id := fmt.Sprintf("evt-held-%d", i)
		if got := deliveries[id]; len(got) != 1 || got[0] != 1 {
			t.Errorf("%s: deliveries %v, want handled once, on delivery 1", id, got)
		}
	}
}
