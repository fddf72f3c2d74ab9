package snapshot

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// InFlight bounds the messages a FollowParallel holds between the consumer
// and apply (their payloads and what prepare made of them): a few MB at
// most, nothing next to a rebuilt projection's heap.
const InFlight = 1024

// batchSize messages, or fewer making batchBytes, go from stage to stage
// together: a hand-off (two channel sends, a wake-up) per message cost
// more than decoding it. An imported batch (hundreds of records, a
// hundred KB and more) goes on its own: what prepare makes of a record is
// a few times its size, so batches of them would hold a hundred thousand
// records between the stages, not a thousand.
const (
	batchSize  = 64
	batchBytes = 64 << 10
)

// flushEvery bounds how long a message waits for its batch to fill once
// the consumer has said more are pending, in case they never come (a
// newer message of their subject replaced them).
const flushEvery = 5 * time.Millisecond

// FollowParallel is [Follow] with each message's decoding taken off the
// apply goroutine: prepare runs on GOMAXPROCS workers, any number of
// messages at once, and must read no state apply writes; apply gets each
// message with what prepare made of it on one goroutine, in stream order,
// so a later snapshot of a subject is applied after an earlier one exactly
// as with Follow. CaughtUp closes once apply has returned for the stream's
// last message as of the start, so every message before it is applied too.
// At most [InFlight] messages, or InFlight/batchSize imported batches,
// are between the consumer and apply; when apply falls behind, the
// consumer waits. Messages travel in batches; one
// with none pending behind it goes at once, so a live update waits for no
// batch.
func FollowParallel[T any](ctx context.Context, js jetstream.JetStream, stream string, log *slog.Logger, prepare func(Msg) T, apply func(Msg, T)) (*Following, error) {
	p := &pipeline[T]{
		stream: stream,
		log:    log,
		order:  make(chan *batch[T], InFlight/batchSize),
		work:   make(chan *batch[T], InFlight/batchSize),
		quit:   make(chan struct{}),
		ended:  make(chan struct{}),
	}
	p.batches.New = func() any { return &batch[T]{done: make(chan struct{}, 1)} }
	f := &Following{}
	f.stop = p.end
	var stages sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		stages.Go(func() { p.prepare(prepare) })
	}
	stages.Go(func() { p.apply(f, apply) })
	stages.Go(p.flushIdle)
	go func() { stages.Wait(); close(p.ended) }()
	if err := consume(ctx, js, stream, log, f, p.hand); err != nil {
		_ = p.end(ctx)
		return nil, err
	}
	return f, nil
}

// pipeline is a FollowParallel's stages: the consumer's goroutine fills a
// batch and hands each, in order, to order (apply's queue) and to work
// (the workers' queue); a worker prepares it and signals it done; apply
// takes batches from order and waits on each.
type pipeline[T any] struct {
	stream      string
	log         *slog.Logger
	order, work chan *batch[T]
	quit        chan struct{} // closed by end: every stage returns
	ended       chan struct{} // closed once they have
	once        sync.Once
	batches     sync.Pool

	mu      sync.Mutex // guards filling and its size, shared by hand and flushIdle
	filling *batch[T]
	size    int // bytes of filling's messages
}

// batch is up to batchSize messages on their way, reused.
type batch[T any] struct {
	msgs []Msg
	outs []T
	done chan struct{} // a worker's signal that outs are set
}

func (p *pipeline[T]) hand(m jetstream.Msg) {
	p.mu.Lock()
	defer p.mu.Unlock()
	msg, pending, ok := toMsg(m, p.stream, p.log)
	if !ok {
		return
	}
	if p.filling == nil {
		p.filling = p.batches.Get().(*batch[T])
	}
	p.filling.msgs = append(p.filling.msgs, msg)
	p.size += len(msg.Data)
	if len(p.filling.msgs) >= batchSize || p.size >= batchBytes || pending == 0 {
		p.flush()
	}
}

// flushIdle sends a batch that waited flushEvery.
func (p *pipeline[T]) flushIdle() {
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			p.mu.Lock()
			if p.filling != nil {
				p.flush()
			}
			p.mu.Unlock()
		case <-p.quit:
			return
		}
	}
}

// flush sends the batch being filled; p.mu is held.
func (p *pipeline[T]) flush() {
	b := p.filling
	p.filling, p.size = nil, 0
	// order first: apply waits on batches in the order they were handed.
	select {
	case p.order <- b:
	case <-p.quit:
		return
	}
	select {
	case p.work <- b:
	case <-p.quit:
	}
}

func (p *pipeline[T]) prepare(prepare func(Msg) T) {
	for {
		select {
		case b := <-p.work:
			for _, m := range b.msgs {
				b.outs = append(b.outs, prepare(m))
			}
			b.done <- struct{}{} // capacity 1, and apply takes it before reuse
		case <-p.quit:
			return
		}
	}
}

func (p *pipeline[T]) apply(f *Following, apply func(Msg, T)) {
	var zero T
	for {
		var b *batch[T]
		select {
		case b = <-p.order:
		case <-p.quit:
			return
		}
		select {
		case <-b.done:
		case <-p.quit:
			return
		}
		for i, msg := range b.msgs {
			apply(msg, b.outs[i])
			f.done(msg.Seq)
			b.msgs[i], b.outs[i] = Msg{}, zero
		}
		b.msgs, b.outs = b.msgs[:0], b.outs[:0]
		p.batches.Put(b)
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
