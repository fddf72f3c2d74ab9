package partition

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/crmslack/crmslack/libs/testkit"
)

// TestPinnedHandoverReordersAChannel is why partitions are not owned through
// the server's pinned-client priority groups (docs/delivery.md): when the
// pinned client stops pulling (crashed, or stalled past PinnedTTL), the
// server pins the next one and hands it the messages never delivered at
// once, while the ones the old client held come back only when their
// AckWait runs out. Command 2 of a channel then reaches Slack before
// command 1. The new client learns it was pinned only from the messages
// themselves (their Nats-Pin-Id), the first of which is already one that
// must wait; a lease owner gates when it acquires the lease, before it pulls
// anything (lanes' start-up gate).
func TestPinnedHandoverReordersAChannel(t *testing.T) {
	t.Parallel()
	srv := testkit.NATS(t)
	js := testkit.JetStream(t, testkit.NATSConn(t, srv))
	ctx := testkit.Context(t)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "PINNED", Subjects: []string{"pinned.>"}}); err != nil {
		t.Fatal(err)
	}
	const ackWait = 3 * time.Second
	if _, err := js.CreateConsumer(ctx, "PINNED", jetstream.ConsumerConfig{
		Durable: "p0", AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait,
		PriorityPolicy: jetstream.PriorityPolicyPinned, PriorityGroups: []string{"delivery"}, PinnedTTL: 500 * time.Millisecond,
	}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"1", "2"} {
		if _, err := js.Publish(ctx, "pinned.channel", []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	fetchOne := func(js jetstream.JetStream) (jetstream.Msg, error) {
		c, err := js.Consumer(ctx, "PINNED", "p0")
		if err != nil {
			return nil, err
		}
		for ctx.Err() == nil {
			batch, err := c.Fetch(1, jetstream.FetchPriorityGroup("delivery"), jetstream.FetchMaxWait(200*time.Millisecond))
			if err != nil {
				continue
			}
			for m := range batch.Messages() {
				return m, nil
			}
		}
		return nil, context.Cause(ctx)
	}
	// Replica A is pinned, takes command 1 and dies before settling it.
	a, err := fetchOne(testkit.JetStream(t, testkit.NATSConn(t, srv)))
	if err != nil {
		t.Fatal(err)
	}
	if string(a.Data()) != "1" {
		t.Fatalf("replica a got %q first", a.Data())
	}
	start := time.Now()
	// Replica B is pinned once A's PinnedTTL passes, and is handed command 2
	// while command 1 waits out its AckWait.
	b, err := fetchOne(testkit.JetStream(t, testkit.NATSConn(t, srv)))
	if err != nil {
		t.Fatal(err)
	}
	if string(b.Data()) != "2" || time.Since(start) >= ackWait {
		t.Fatalf("after the handover replica b got %q after %s; the test expects command 2 before command 1's AckWait (%s)",
			b.Data(), time.Since(start), ackWait)
	}
}
