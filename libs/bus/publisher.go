package bus

import "context"

// Publisher adapts a Bus to the one-method port a core declares for what it
// publishes, in its own types:
//
//	type Publisher interface {
//		Publish(ctx context.Context, subject string, ev bus.Event) error
//	}
//
// It is the one such adapter; services do not write their own.
type Publisher struct{ b *Bus }

// Publisher returns the adapter.
func (b *Bus) Publisher() Publisher { return Publisher{b} }

// Publish publishes ev to subject and waits for the stream's ack; see
// [Bus.Publish].
func (p Publisher) Publish(ctx context.Context, subject string, ev Event) error {
	_, err := p.b.Publish(ctx, subject, ev)
	return err
}
