package bus

import "context"

// Binding is one consumer to start: a spec and its handler, bound by Bind.
type Binding func(ctx context.Context) (*Subscription, error)

// Bind pairs spec with h for SubscribeAll.
func Bind[T Event](b *Bus, spec ConsumerSpec, h Handler[T]) Binding {
	return func(ctx context.Context) (*Subscription, error) { return Subscribe(ctx, b, spec, h) }
}

// SubscribeAll starts the consumers in order. On the first error it stops
// the ones started and returns that error, so a service never runs with
// part of its consumers.
func SubscribeAll(ctx context.Context, bindings ...Binding) ([]*Subscription, error) {
	subs := make([]*Subscription, 0, len(bindings))
	for _, start := range bindings {
		s, err := start(ctx)
		if err != nil {
			for _, s := range subs {
				_ = s.Stop(ctx)
			}
			return nil, err
		}
		subs = append(subs, s)
	}
	return subs, nil
}
