// Package lanes consumes one event type with one durable pull consumer and
// hands each event to one of N lanes by a key (the signal's owner): a lane
// handles its events one at a time in stream order, lanes run side by side.
// libs/bus's Subscribe handles in stream order only with one handler at a
// time; a signal costs a few key-value round trips, so that would cap a
// replica at about a hundred signals a second under load, where N lanes do
// N times as many while each owner still gets theirs in order.
//
// The handler contract is libs/bus's: nil acks; a temporary error is
// retried in the lane, in place, on a short schedule (so a blip does not
// reorder the owner's signals), then nak'ed with the bus's back-off; a
// permanent error, an undecodable message or the last allowed delivery goes
// to the dead-letter subject (bus.DeadLetter) and is terminated, or nak'ed
// when that publish fails; a panic is recovered and treated as temporary.
//
// Order holds within one running consumer. After a crash, a message the
// dead process held comes back when its AckWait runs out and may follow
// newer ones of the same owner; two replicas share the durable and split
// an owner's signals between them.
package lanes

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/tracectx"
)

// Config configures a consumer.
type Config struct {
	// Spec is the durable consumer; its AckWait, MaxDeliver, BackOff and
	// MaxAckPending apply as with bus.Subscribe (Concurrency is ignored).
	Spec bus.ConsumerSpec
	// Lanes is how many events are handled at once. Default 16.
	Lanes int
	// Retry is the in-lane schedule for temporary errors before the message
	// is nak'ed. Default 100ms, 500ms, 2s.
	Retry []time.Duration
}

// Outcomes, the "outcome" label of crmslack_signals_consumer_total.
const (
	OutcomeAck   = "ack"
	OutcomeRetry = "retry" // retried in the lane
	OutcomeNak   = "nak"
	OutcomeDLQ   = "dlq"
	OutcomePanic = "panic"
)

// Consumer is a running lanes consumer.
type Consumer struct {
	b        *bus.Bus
	spec     bus.ConsumerSpec
	retry    []time.Duration
	backoff  []time.Duration
	budget   time.Duration
	log      *slog.Logger
	outcomes *prometheus.CounterVec

	lanes     []chan item
	fetcher   *bus.Fetcher
	stopFetch context.CancelFunc
	fetched   chan struct{} // closed when the fetcher has stopped
	settled   chan struct{} // closed when every lane is done: the keep-alive stops
	stopping  chan struct{}
	stopOnce  sync.Once
	running   sync.WaitGroup
	decode    func(m jetstream.Msg) (key string, call func(context.Context) error, err error)
}

// item is a decoded message on its way through a lane.
type item struct {
	h    *bus.Held
	call func(context.Context) error
}

// Start creates or updates the durable consumer and handles its messages
// with h, each in the lane of key(event), until Stop.
func Start[T bus.Event](ctx context.Context, b *bus.Bus, cfg Config, reg prometheus.Registerer, log *slog.Logger, key func(T) string, h bus.Handler[T]) (*Consumer, error) {
	var zero T
	mt := zero.ProtoReflect().Type()
	typeName := string(mt.Descriptor().FullName())
	if err := cfg.Spec.Validate(); err != nil {
		return nil, err
	}
	if cfg.Lanes <= 0 {
		cfg.Lanes = 16
	}
	if len(cfg.Retry) == 0 {
		cfg.Retry = []time.Duration{100 * time.Millisecond, 500 * time.Millisecond, 2 * time.Second}
	}
	cc := cfg.Spec.ConsumerConfig()
	backoff := cfg.Spec.BackOff
	if len(backoff) == 0 {
		backoff = bus.DefaultBackOff()
	}
	outcomes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name:        "crmslack_signals_consumer_total",
		Help:        "Messages of the signals lanes consumer by outcome: ack, retry (in its lane), nak, dlq, panic.",
		ConstLabels: prometheus.Labels{"consumer": cc.Durable},
	}, []string{"outcome"})
	if err := reg.Register(outcomes); err != nil {
		return nil, fmt.Errorf("registering lanes metrics: %w", err)
	}
	for _, o := range []string{OutcomeAck, OutcomeRetry, OutcomeNak, OutcomeDLQ, OutcomePanic} {
		outcomes.WithLabelValues(o) // every series shows from the start, at 0
	}
	c := &Consumer{
		b: b, spec: cfg.Spec, retry: cfg.Retry, backoff: backoff,
		budget: cmp.Or(cfg.Spec.HandlerTimeout, bus.DefaultHandlerTimeout),
		log:    log.With("stream", cfg.Spec.Stream, "consumer", cc.Durable), outcomes: outcomes,
		lanes: make([]chan item, cfg.Lanes), stopping: make(chan struct{}),
	}
	c.decode = func(m jetstream.Msg) (string, func(context.Context) error, error) {
		if got := m.Headers().Get(bus.HeaderType); got != "" && got != typeName {
			return "", nil, fmt.Errorf("message of type %q on a consumer of %s", got, typeName)
		}
		ev := mt.New().Interface().(T)
		if err := proto.Unmarshal(m.Data(), ev); err != nil {
			return "", nil, fmt.Errorf("undecodable %s: %w", typeName, err)
		}
		if env := ev.GetEnvelope(); env.GetEventId() == "" || env.GetOrgId() == "" {
			return "", nil, fmt.Errorf("%s without envelope event_id or org_id", typeName)
		}
		return key(ev), func(ctx context.Context) error { return h(ctx, ev) }, nil
	}
	cons, err := b.JetStream().CreateOrUpdateConsumer(ctx, cfg.Spec.Stream, cc)
	if err != nil {
		return nil, fmt.Errorf("ensuring consumer %s on stream %s: %w", cc.Durable, cfg.Spec.Stream, err)
	}
	for i := range c.lanes {
		c.lanes[i] = make(chan item, 64)
		c.running.Go(func() { c.lane(c.lanes[i]) })
	}
	// Held messages are kept alive while they wait in a lane (bus.Fetcher),
	// so AckWait only bounds how long a killed replica's signals wait.
	c.fetcher = bus.NewFetcher(cons, min(cc.MaxAckPending, 64*cfg.Lanes), cc.AckWait)
	c.fetched, c.settled = make(chan struct{}), make(chan struct{})
	var fctx context.Context
	fctx, c.stopFetch = context.WithCancel(context.Background())
	go func() {
		defer close(c.fetched)
		c.fetcher.Run(fctx, c.dispatch, func(err error) {
			if err != nil {
				c.log.Warn("fetching signals failed", "err", err)
			}
		})
	}()
	go c.fetcher.KeepAlive(c.settled)
	c.log.Info("consumer started", "type", typeName, "lanes", cfg.Lanes, "ack_wait", cc.AckWait, "max_deliver", cc.MaxDeliver)
	return c, nil
}

// dispatch runs on the fetcher's goroutine, in stream order.
func (c *Consumer) dispatch(held *bus.Held) {
	key, call, err := c.decode(held.Msg)
	if err != nil {
		c.deadLetter(context.Background(), held.Msg, bus.Permanent(err))
		c.fetcher.Release(held)
		return
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	select {
	case c.lanes[h.Sum32()%uint32(len(c.lanes))] <- item{held, call}:
	case <-c.stopping:
		_ = held.Msg.Nak()
		c.fetcher.Release(held)
	}
}

func (c *Consumer) lane(in <-chan item) {
	for {
		select {
		case it := <-in:
			c.process(it.h, it.call)
		case <-c.stopping:
			for {
				select {
				case it := <-in:
					_ = it.h.Msg.Nak() // redelivered first, in order, to whoever consumes next
					c.fetcher.Release(it.h)
				default:
					return
				}
			}
		}
	}
}

func (c *Consumer) process(h *bus.Held, call func(context.Context) error) {
	defer c.fetcher.Release(h)
	m := h.Msg
	md, _ := m.Metadata()
	for attempt := 0; ; attempt++ {
		c.fetcher.Started(h, time.Now().Add(c.budget))
		err := c.call(m, call)
		if err == nil {
			if aerr := m.Ack(); aerr != nil {
				c.log.Warn("acknowledging", "err", aerr)
			}
			c.outcomes.WithLabelValues(OutcomeAck).Inc()
			return
		}
		last := md != nil && int(md.NumDelivered) >= c.spec.ConsumerConfig().MaxDeliver
		if bus.IsPermanent(err) || (last && attempt >= len(c.retry)) {
			c.deadLetter(context.Background(), m, err)
			return
		}
		if attempt >= len(c.retry) {
			n := 1
			if md != nil {
				n = int(md.NumDelivered)
			}
			d := c.backoff[min(n, len(c.backoff))-1]
			_ = m.NakWithDelay(d + rand.N(d/5+1))
			c.outcomes.WithLabelValues(OutcomeNak).Inc()
			c.log.Warn("signal failed; redelivered later", "err", err, "delay", d)
			return
		}
		c.outcomes.WithLabelValues(OutcomeRetry).Inc()
		if m.InProgress() == nil {
			c.fetcher.Progressed(h, time.Now().Add(c.budget))
		}
		select {
		case <-time.After(c.retry[attempt]):
		case <-c.stopping:
			_ = m.Nak()
			return
		}
	}
}

// call runs the handler with the message's trace and its handler timeout,
// recovering a panic as a temporary error.
func (c *Consumer) call(m jetstream.Msg, call func(context.Context) error) (err error) {
	ctx := context.Background()
	if tc, perr := tracectx.Parse(m.Headers().Get(bus.HeaderTraceparent)); perr == nil {
		ctx = tracectx.WithTrace(ctx, tc.Child())
	}
	ctx = tracectx.Ensure(ctx)
	ctx, cancel := context.WithTimeout(ctx, c.budget)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			c.outcomes.WithLabelValues(OutcomePanic).Inc()
			c.log.ErrorContext(ctx, "handler panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("%w: %v", bus.ErrHandlerPanic, p)
		}
	}()
	return call(ctx)
}

func (c *Consumer) deadLetter(ctx context.Context, m jetstream.Msg, cause error) {
	reason := cause.Error()
	if err := c.b.DeadLetter(ctx, m, c.spec.Stream, c.spec.Durable, reason); err != nil {
		c.log.Error("dead-lettering failed; the message is redelivered", "err", err, "reason", reason)
		_ = m.NakWithDelay(time.Second)
		return
	}
	_ = m.TermWithReason(bus.HeaderSafe(reason))
	c.outcomes.WithLabelValues(OutcomeDLQ).Inc()
	c.log.Error("message dead-lettered", "subject", m.Subject(), "reason", reason)
}

// Stop stops pulling, lets each lane finish the message it is handling,
// naks what the lanes still hold, and waits (bounded by ctx).
func (c *Consumer) Stop(ctx context.Context) error {
	c.stopOnce.Do(func() {
		c.stopFetch()
		close(c.stopping)
		go func() {
			<-c.fetched
			c.running.Wait()
			close(c.settled)
		}()
	})
	done := c.settled
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return errors.New("lanes: handlers still running at stop")
	}
}
