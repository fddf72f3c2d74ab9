package bus

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Info describes the message a handler is handling; see [MessageInfo].
type Info struct {
	// Subject the event was published on.
	Subject string
	// Stream and Consumer (durable name) it was delivered from.
	Stream, Consumer string
	// StreamSeq is the message's sequence in the stream.
	StreamSeq uint64
	// NumDelivered counts deliveries of this message, this one included (1
	// on the first). MaxDeliver is the consumer's limit; the delivery with
	// NumDelivered == MaxDeliver is the last before dead-lettering.
	NumDelivered uint64
	MaxDeliver   int
	// Stored is when the stream stored the message.
	Stored time.Time
	// Header is the message's headers. Do not modify it.
	Header nats.Header
}

type deliveryKey struct{}

// delivery is what a handler's ctx knows about its message.
type delivery struct {
	info Info
	msg  jetstream.Msg
	hctx *handlerCtx
	sub  *Subscription
	held *Held
}

// progressed records that an InProgress was sent: the keep-alive may wait,
// and the handler's deadline moved on.
func (d *delivery) progressed() {
	d.sub.fetcher.Progressed(d.held, time.Now().Add(d.sub.budget))
}

// MessageInfo returns the metadata of the message being handled, when ctx
// is (or derives from) a handler's context.
func MessageInfo(ctx context.Context) (Info, bool) {
	d, ok := ctx.Value(deliveryKey{}).(*delivery)
	if !ok {
		return Info{}, false
	}
	return d.info, true
}

// InProgress tells the server the handler of ctx's message is still working,
// which restarts the consumer's AckWait, and extends ctx's deadline by the
// handler timeout. Call it from a handler that may run longer than its
// [ConsumerSpec.HandlerTimeout] (a backfill page, a rate-limited Slack call;
// the message itself is kept alive anyway); it returns [ErrNotHandling]
// for a context that is not a handler's.
func InProgress(ctx context.Context) error {
	d, ok := ctx.Value(deliveryKey{}).(*delivery)
	if !ok {
		return ErrNotHandling
	}
	if err := d.msg.InProgress(); err != nil {
		return fmt.Errorf("bus: signalling progress on %s seq %d: %w", d.info.Stream, d.info.StreamSeq, err)
	}
	d.progressed()
	d.hctx.extend()
	return nil
}

// handlerCtx is a context whose deadline can be pushed back (by InProgress),
// which context.WithDeadline cannot do. Its Err is context.DeadlineExceeded
// when the budget runs out, or the parent's error when the parent ends.
//
// It is never handed to a handler directly: newHandlerContext wraps it in
// context.WithCancel so that context.Cause and every derived context behave
// as with the standard library's contexts.
type handlerCtx struct {
	parent context.Context
	done   chan struct{}
	budget time.Duration

	mu         sync.Mutex
	err        error
	deadline   time.Time
	timer      *time.Timer
	stopParent func() bool
	afterFuncs map[*func()]struct{}
}

func newHandlerCtx(parent context.Context, start time.Time, budget time.Duration) *handlerCtx {
	c := &handlerCtx{
		parent:   parent,
		done:     make(chan struct{}),
		budget:   budget,
		deadline: start.Add(budget),
	}
	c.timer = time.AfterFunc(time.Until(c.deadline), c.expire)
	c.stopParent = context.AfterFunc(parent, func() { c.cancel(parent.Err()) })
	return c
}

func (c *handlerCtx) expire() {
	c.mu.Lock()
	if c.err != nil || time.Now().Before(c.deadline) { // extended meanwhile; the timer is re-armed
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.cancel(context.DeadlineExceeded)
}

// extend moves the deadline to now + budget.
func (c *handlerCtx) extend() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.deadline = time.Now().Add(c.budget)
	c.timer.Reset(c.budget)
}

func (c *handlerCtx) cancel(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	close(c.done)
	fns := c.afterFuncs
	c.afterFuncs = nil
	c.mu.Unlock()
	for f := range fns {
		go (*f)()
	}
}

// release ends the context once the handler returned.
func (c *handlerCtx) release() {
	c.stopParent()
	c.timer.Stop()
	c.cancel(context.Canceled)
}

func (c *handlerCtx) Deadline() (time.Time, bool) {
	c.mu.Lock()
	d := c.deadline
	c.mu.Unlock()
	if pd, ok := c.parent.Deadline(); ok && pd.Before(d) {
		return pd, true
	}
	return d, true
}

func (c *handlerCtx) Done() <-chan struct{} { return c.done }

func (c *handlerCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *handlerCtx) Value(key any) any { return c.parent.Value(key) }

// AfterFunc lets contexts derived from c register without a goroutine each
// (the context package looks for this method).
func (c *handlerCtx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		go f()
		return func() bool { return false }
	}
	if c.afterFuncs == nil {
		c.afterFuncs = make(map[*func()]struct{})
	}
	key := &f
	c.afterFuncs[key] = struct{}{}
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if _, ok := c.afterFuncs[key]; !ok {
			return false
		}
		delete(c.afterFuncs, key)
		return true
	}
}

func (c *handlerCtx) String() string { return "bus.handlerContext" }

// newHandlerContext returns the context a handler runs with and the function
// that ends it.
func newHandlerContext(parent context.Context, d *delivery, start time.Time, budget time.Duration) (context.Context, func()) {
	hc := newHandlerCtx(parent, start, budget)
	d.hctx = hc
	ctx, cancel := context.WithCancel(hc)
	ctx = context.WithValue(ctx, deliveryKey{}, d)
	return ctx, func() {
		cancel()
		hc.release()
	}
}
