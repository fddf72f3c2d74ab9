package bus

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// PublishAsync publishes ev on subject like [Bus.Publish] but does not wait
// for the stream's ack: the returned future carries it. It waits (bounded by
// ctx) only while Config.PublishAsyncMaxPending publishes await their acks.
// A caller with many events in flight pays one round trip for all of them
// instead of one each.
func (b *Bus) PublishAsync(ctx context.Context, subject string, ev Event) (jetstream.PubAckFuture, error) {
	m, err := b.newMsg(ctx, subject, ev)
	if err != nil {
		return nil, err
	}
	f, err := b.publishAsync(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("bus: publishing %s (event %s) on %s: %w",
			m.Header.Get(HeaderType), m.Header.Get(HeaderMsgID), subject, err)
	}
	return f, nil
}
