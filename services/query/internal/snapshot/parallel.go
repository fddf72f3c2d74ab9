package snapshot

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
)

// InFlight bounds the messages a FollowParallel holds between the consumer
// and apply (their payloads and what prepare made of them): a few MB at
// most, nothing next to a rebuilt projection's heap.
const InFlight = 1024

// FollowParallel is [Follow] with each message's decoding taken off the
// apply goroutine: prepare runs on GOMAXPROCS workers, any number of
// messages at once, and must read no state apply writes; apply gets each
// message with what prepare made of it on one goroutine, in stream order,
// so a later snapshot of a subject is applied after an earlier one exactly
// as with Follow. CaughtUp closes once apply has returned for the stream's
// last message as of the start, so every message before it is applied too.
// At most [InFlight] messages are between the consumer and apply; when
// apply falls behind, the consumer waits.
func FollowParallel[T any](ctx context.Context, js jetstream.JetStream, stream string, log *slog.Logger, prepare func(Msg) T, apply func(Msg, T)) (*Following, error) {
	p := &pipeline[T]{
		order: make(chan *slot[T], InFlight),
		work:  make(chan *slot[T], InFlight),
		quit:  make(chan struct{}),
		ended: make(chan struct{}),
	}
	p.slots.New = func() any { return &slot[T]{done: make(chan struct{}, 1)} }
	f := &Following{}
	f.stop = p.end
	var stages sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		stages.Go(func() { p.prepare(stream, log, prepare) })
	}
	stages.Go(func() { p.apply(f, apply) })
	go func() { stages.Wait(); close(p.ended) }()
	if err := consume(ctx, js, stream, log, f, p.hand); err != nil {
		_ = p.end(ctx)
		return nil, err
	}
	return f, nil
}

// pipeline is a FollowParallel's stages: the consumer's goroutine hands
// each message, in order, to order (apply's queue) and to work (the
// workers' queue); a worker prepares it and signals its slot; apply takes
// slots from order and waits on each.
type pipeline[T any] struct {
	order, work chan *slot[T]
	quit        chan struct{} // closed by end: every stage returns
	ended       chan struct{} // closed once they have
	once        sync.Once
	slots       sync.Pool
}

// slot is one message on its way, reused.
type slot[T any] struct {
	in   jetstream.Msg
	msg  Msg
	ok   bool // msg was read (the message had metadata)
	out  T
	done chan struct{} // a worker's signal that msg and out are set
}

func (p *pipeline[T]) hand(m jetstream.Msg) {
	s := p.slots.Get().(*slot[T])
	s.in = m
	// order first: apply waits on slots in the order they were handed.
	select {
	case p.order <- s:
	case <-p.quit:
		return
	}
	select {
	case p.work <- s:
	case <-p.quit:
	}
}

func (p *pipeline[T]) prepare(stream string, log *slog.Logger, prepare func(Msg) T) {
	for {
		select {
		case s := <-p.work:
			if s.msg, s.ok = toMsg(s.in, stream, log); s.ok {
				s.out = prepare(s.msg)
			}
			s.done <- struct{}{} // capacity 1, and apply takes it before reuse
		case <-p.quit:
			return
		}
	}
}

func (p *pipeline[T]) apply(f *Following, apply func(Msg, T)) {
	var zero T
	for {
		var s *slot[T]
		select {
		case s = <-p.order:
		case <-p.quit:
			return
		}
		select {
		case <-s.done:
		case <-p.quit:
			return
		}
		if s.ok {
			apply(s.msg, s.out)
			f.done(s.msg.Seq)
		}
		s.in, s.msg, s.ok, s.out = nil, Msg{}, false, zero
		p.slots.Put(s)
	}
}

// end stops the stages (messages still on their way are dropped: the
// consumer has stopped) and waits for them, bounded by ctx.
func (p *pipeline[T]) end(ctx context.Context) error {
	p.once.Do(func() { close(p.quit) })
	select {
	case <-p.ended:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("snapshot: stopping: %w", ctx.Err())
	}
}
