package bus_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/testkit"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

// An unavailability error is retried in place: more failures than
// MaxDeliver, within seconds, one delivery, no dead letter.
func TestUnavailableRetriedInPlace(t *testing.T) {
	e := newEnv(t)
	var calls atomic.Int32
	var delivered atomic.Uint64
	subscribe(t, e.bus, bus.ConsumerSpec{Stream: e.stream, Durable: "outage", MaxDeliver: 2},
		func(ctx context.Context, _ *crmv1.RecordUpserted) error {
			info, _ := bus.MessageInfo(ctx)
			delivered.Store(info.NumDelivered)
			if calls.Add(1) <= 4 {
				return fmt.Errorf("publishing: %w", nats.ErrNoResponders)
			}
			return nil
		})
	start := time.Now()
	publish(t, e.bus, e.subject(), newEvent("ev-1"))
	testkit.Eventually(t, 10*time.Second, func() bool { return calls.Load() == 5 })
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("5 calls took %s, want the short flat retry", d)
	}
	if n := delivered.Load(); n != 1 {
		t.Errorf("NumDelivered %d, want 1 (retried in place)", n)
	}
}
