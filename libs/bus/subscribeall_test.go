package bus_test

import (
	"context"
	"testing"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/testkit"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

func TestSubscribeAll(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	h := func(context.Context, *crmv1.RecordUpserted) error { return nil }
	ctx := testkit.Context(t)

	subs, err := bus.SubscribeAll(ctx,
		bus.Bind(e.bus, bus.ConsumerSpec{Stream: e.stream, Durable: "all-a"}, h),
		bus.Bind(e.bus, bus.ConsumerSpec{Stream: e.stream, Durable: "all-b"}, h),
	)
	if err != nil {
		t.Fatalf("SubscribeAll: %v", err)
	}
	if len(subs) != 2 {
		t.Fatalf("got %d subscriptions, want 2", len(subs))
	}
	for _, s := range subs {
		if err := s.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	}

	subs, err = bus.SubscribeAll(ctx,
		bus.Bind(e.bus, bus.ConsumerSpec{Stream: e.stream, Durable: "all-c"}, h),
		bus.Bind(e.bus, bus.ConsumerSpec{Stream: "NO_SUCH_STREAM", Durable: "all-d"}, h),
	)
	if err == nil {
		t.Fatal("SubscribeAll on a missing stream: no error")
	}
	if subs != nil {
		t.Errorf("SubscribeAll failed but returned %d subscriptions", len(subs))
	}
}
