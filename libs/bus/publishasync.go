package bus

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// PublishAsync validates ev and publishes it on subject without waiting
// for the stream's ack, which the future delivers (PubAck.Duplicate set
// for an event id already stored), for callers that keep many publishes in
// flight and need each one's outcome (a backfill reporting bad rows by
// line). At most Config.PublishAsyncMaxPending are unacknowledged; past
// that it waits, bounded by ctx. Headers and trace are as [Bus.Publish]'s.
func (b *Bus) PublishAsync(ctx context.Context, subject string, ev Event) (jetstream.PubAckFuture, error) {
	m, err := b.newMsg(ctx, subject, ev)
	if err != nil {
		return nil, err
	}
	f, err := b.publishAsync(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("bus: publishing %s (event %s) on %s: %w", m.Header.Get(HeaderType), m.Header.Get(HeaderMsgID), subject, err)
	}
	return f, nil
}
