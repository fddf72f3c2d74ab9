package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/tracectx"
)

// Handler handles one event; see the package documentation for what its
// result means.
type Handler[T Event] func(ctx context.Context, ev T) error

// Defaults for zero-valued [ConsumerSpec] fields.
const (
	// DefaultAckWait: a replica keeps every message it holds alive (see
	// pump.go), so AckWait is how long a killed replica's messages wait
	// before another replica gets them.
	DefaultAckWait = 10 * time.Second
	// DefaultHandlerTimeout: a handler's ctx ends 27 s after it starts
	// (the budget handlers were written against). Long enough for a Slack
	// call that waits out a short rate limit; longer work calls InProgress.
	DefaultHandlerTimeout = 27 * time.Second
	// DefaultMaxDeliver with DefaultBackOff retries for about an hour (1 s,
	// 2 s, 5 s, ... then every 5 min) before dead-lettering: a dependency
	// outage of up to an hour heals by itself, a poison message does not
	// retry forever.
	DefaultMaxDeliver = 20
	// DefaultMaxAckPending bounds the unacknowledged messages across all
	// replicas of a consumer (the server's own default): enough for
	// parallelism, small enough that an outage does not pile up thousands of
	// messages in retry.
	DefaultMaxAckPending = 1000
	// DefaultConcurrency: one handler at a time per replica, in stream order.
	DefaultConcurrency = 1
	// DefaultPrefetchPerWorker is how many messages a replica holds per
	// concurrent handler (kept alive while they wait).
	DefaultPrefetchPerWorker = 64
	// MinAckWait is the shortest AckWait accepted.
	MinAckWait = time.Second
)

// DefaultBackOff is the nak delay schedule used when ConsumerSpec.BackOff is
// empty: delivery n waits entry n-1 (the last entry repeats), plus up to 20 %
// jitter. Roughly exponential, capped at 5 minutes.
func DefaultBackOff() []time.Duration {
	return []time.Duration{
		1 * time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second,
		30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute,
	}
}

// ConsumerSpec declares a durable pull consumer. Stream and Durable are
// required; zero values elsewhere mean the documented default.
type ConsumerSpec struct {
	// Stream to consume.
	Stream string
	// Durable is the consumer's name and a contract: renaming it creates a
	// new consumer that replays the whole stream. Replicas of one service
	// use the same name and share the work.
	Durable string
	// FilterSubjects restricts the consumer to these subjects (wildcards
	// allowed). Empty means the whole stream.
	FilterSubjects []string
	// AckWait is how long the server waits for an ack, or a progress
	// signal, before redelivering: the replica renews every message it holds
	// once half of it has run, so it bounds how long a killed replica's
	// messages wait. Default DefaultAckWait; at least MinAckWait.
	AckWait time.Duration
	// HandlerTimeout is how long a handler's ctx lives (InProgress extends
	// it). Default DefaultHandlerTimeout.
	HandlerTimeout time.Duration
	// MaxDeliver bounds deliveries of one message; the failure of delivery
	// MaxDeliver dead-letters it. Default DefaultMaxDeliver; must be > 0
	// (unbounded redelivery is refused).
	MaxDeliver int
	// BackOff is the nak delay schedule after a temporary error: delivery n
	// waits BackOff[n-1] (the last entry repeats) plus up to 20 % jitter.
	// Default DefaultBackOff(). It is applied by the client with
	// NakWithDelay, not passed to the server (the server's BackOff would
	// replace AckWait).
	BackOff []time.Duration
	// MaxAckPending bounds unacknowledged messages across all replicas.
	// Default DefaultMaxAckPending; at least Concurrency.
	MaxAckPending int
	// Concurrency is how many handlers run in parallel in this replica.
	// Default 1. Above 1, messages are handled out of order.
	Concurrency int
	// Prefetch is how many messages this replica buffers ahead. Default
	// DefaultPrefetchPerWorker × Concurrency, at most MaxAckPending.
	Prefetch int
	// DisableDeadLetter terminates messages that would be dead-lettered
	// instead of publishing them to the dead-letter stream (they are only
	// logged). Off by default: dead-lettering is on unless disabled, which
	// is why this is a "disable" switch rather than a DeadLetter bool whose
	// zero value would turn it off.
	DisableDeadLetter bool
}

// Validate reports the first invalid field, wrapping [ErrInvalidConfig].
// Zero values are valid (they take defaults).
func (s ConsumerSpec) Validate() error {
	if err := validateName("stream", s.Stream); err != nil {
		return err
	}
	if err := validateName("durable consumer", s.Durable); err != nil {
		return err
	}
	for _, f := range s.FilterSubjects {
		if err := validateFilterSubject(f); err != nil {
			return fmt.Errorf("%w: consumer %s: %w", ErrInvalidConfig, s.Durable, err)
		}
	}
	if s.AckWait != 0 && s.AckWait < MinAckWait {
		return fmt.Errorf("%w: consumer %s: AckWait %s is below the minimum %s", ErrInvalidConfig, s.Durable, s.AckWait, MinAckWait)
	}
	if s.HandlerTimeout < 0 {
		return fmt.Errorf("%w: consumer %s: HandlerTimeout %s is negative", ErrInvalidConfig, s.Durable, s.HandlerTimeout)
	}
	if s.MaxDeliver < 0 {
		return fmt.Errorf("%w: consumer %s: MaxDeliver %d: deliveries must be bounded (> 0, or 0 for the default %d)",
			ErrInvalidConfig, s.Durable, s.MaxDeliver, DefaultMaxDeliver)
	}
	for i, d := range s.BackOff {
		if d <= 0 {
			return fmt.Errorf("%w: consumer %s: BackOff[%d] is %s, must be positive", ErrInvalidConfig, s.Durable, i, d)
		}
	}
	if s.Concurrency < 0 {
		return fmt.Errorf("%w: consumer %s: Concurrency %d is negative", ErrInvalidConfig, s.Durable, s.Concurrency)
	}
	if s.MaxAckPending < 0 {
		return fmt.Errorf("%w: consumer %s: MaxAckPending %d is negative", ErrInvalidConfig, s.Durable, s.MaxAckPending)
	}
	if s.Prefetch < 0 {
		return fmt.Errorf("%w: consumer %s: Prefetch %d is negative", ErrInvalidConfig, s.Durable, s.Prefetch)
	}
	if d := s.withDefaults(); d.MaxAckPending < d.Concurrency {
		return fmt.Errorf("%w: consumer %s: MaxAckPending %d is below Concurrency %d", ErrInvalidConfig, s.Durable, d.MaxAckPending, d.Concurrency)
	}
	return nil
}

func (s ConsumerSpec) withDefaults() ConsumerSpec {
	if s.AckWait == 0 {
		s.AckWait = DefaultAckWait
	}
	if s.HandlerTimeout == 0 {
		s.HandlerTimeout = DefaultHandlerTimeout
	}
	if s.MaxDeliver == 0 {
		s.MaxDeliver = DefaultMaxDeliver
	}
	if len(s.BackOff) == 0 {
		s.BackOff = DefaultBackOff()
	} else {
		s.BackOff = slices.Clone(s.BackOff)
	}
	if s.MaxAckPending == 0 {
		s.MaxAckPending = DefaultMaxAckPending
	}
	if s.Concurrency == 0 {
		s.Concurrency = DefaultConcurrency
	}
	if s.Prefetch == 0 {
		s.Prefetch = min(DefaultPrefetchPerWorker*s.Concurrency, s.MaxAckPending)
	}
	s.FilterSubjects = slices.Clone(s.FilterSubjects)
	return s
}

// ConsumerConfig is the JetStream configuration [Subscribe] applies for s
// (after defaults): explicit acks, deliver all, no server-side BackOff.
func (s ConsumerSpec) ConsumerConfig() jetstream.ConsumerConfig {
	s = s.withDefaults()
	return jetstream.ConsumerConfig{
		Durable:        s.Durable,
		Description:    "crmslack bus consumer; the durable name is a contract: renaming it replays the stream",
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        s.AckWait,
		MaxDeliver:     s.MaxDeliver,
		MaxAckPending:  s.MaxAckPending,
		FilterSubjects: s.FilterSubjects,
	}
}

// Subscription is a running consumer; see [Subscribe].
type Subscription struct {
	b        *Bus
	spec     ConsumerSpec
	typeName string
	newEvent func() Event
	call     func(context.Context, Event) error
	log      *slog.Logger
	budget   time.Duration
	stream   jetstream.Stream // for the max-deliveries advisory; nil without dead-lettering

	handled  map[string]prometheus.Counter
	duration prometheus.Observer

	runCtx    context.Context // parent of handler contexts; cancelled when Stop gives up
	cancelRun context.CancelFunc
	pumpCtx   context.Context // the fetches'; cancelled by Stop
	stopPump  context.CancelFunc
	fetcher   *Fetcher
	fetchErr  atomic.Bool            // the last fetch failed
	unhealthy atomic.Pointer[string] // why the consumer is not receiving; nil when it is
	kick      chan struct{}          // asks the watchdog to check now
	advisory  *nats.Subscription
	work      chan queued // fetched messages for the workers; never fuller than the fetcher's limit
	pumped    chan struct{}
	workers   sync.WaitGroup
	abandon   atomic.Bool
	stopOnce  sync.Once
	stopping  chan struct{}
	done      chan struct{}
}

type queued struct{ held *Held }

// Subscribe creates or updates the durable consumer spec on its stream and
// starts handling its messages with h, until [Subscription.Stop] or
// [Bus.Close]. ctx bounds the set-up only. T must be a concrete generated
// message type such as *crmv1.RecordUpserted; a message whose Crmslack-Type
// header names another type is dead-lettered.
//
// Unless spec.DisableDeadLetter, Subscribe also ensures the dead-letter
// stream (once per bus) and watches the consumer's max-deliveries advisory.
func Subscribe[T Event](ctx context.Context, b *Bus, spec ConsumerSpec, h Handler[T]) (*Subscription, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: nil handler", ErrInvalidConfig)
	}
	var zero T
	if any(zero) == nil {
		return nil, fmt.Errorf("%w: Subscribe's type parameter must be a concrete message type such as *crmv1.RecordUpserted", ErrInvalidConfig)
	}
	mt := zero.ProtoReflect().Type()
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	spec = spec.withDefaults()

	s := &Subscription{
		b:        b,
		spec:     spec,
		typeName: string(mt.Descriptor().FullName()),
		newEvent: func() Event { return mt.New().Interface().(T) },
		call:     func(ctx context.Context, ev Event) error { return h(ctx, ev.(T)) },
		budget:   spec.HandlerTimeout,
		stopping: make(chan struct{}),
		done:     make(chan struct{}),
		kick:     make(chan struct{}, 1),
		handled:  make(map[string]prometheus.Counter),
	}
	s.log = b.log.With("stream", spec.Stream, "consumer", spec.Durable)
	for _, o := range []string{OutcomeAck, OutcomeNak, OutcomePanic, OutcomeDLQ, OutcomeTerm, OutcomeRetryInPlace} {
		s.handled[o] = b.metrics.handled.WithLabelValues(spec.Stream, spec.Durable, o)
	}
	s.duration = b.metrics.duration.WithLabelValues(spec.Stream, spec.Durable)

	if !spec.DisableDeadLetter {
		if err := b.ensureDeadLetterStreamOnce(ctx); err != nil {
			return nil, err
		}
		st, err := b.js.Stream(ctx, spec.Stream)
		if err != nil {
			return nil, fmt.Errorf("bus: looking up stream %s: %w", spec.Stream, err)
		}
		s.stream = st
	}
	cons, err := createWithRetry(ctx, b.retrying(), "consumer "+spec.Durable+" on "+spec.Stream, func(ctx context.Context) (jetstream.Consumer, error) {
		return b.js.CreateOrUpdateConsumer(ctx, spec.Stream, spec.ConsumerConfig())
	})
	if err != nil {
		return nil, fmt.Errorf("bus: ensuring consumer %s on stream %s: %w", spec.Durable, spec.Stream, err)
	}
	if err := b.addSub(s); err != nil {
		return nil, err
	}
	if err := s.start(cons); err != nil {
		b.removeSub(s)
		return nil, err
	}
	s.log.Info("consumer started", "type", s.typeName, "concurrency", spec.Concurrency,
		"ack_wait", spec.AckWait, "max_deliver", spec.MaxDeliver)
	return s, nil
}

func (s *Subscription) start(cons jetstream.Consumer) error {
	s.runCtx, s.cancelRun = context.WithCancel(context.Background())
	s.pumpCtx, s.stopPump = context.WithCancel(context.Background())
	s.fetcher = NewFetcher(cons, s.spec.Prefetch, s.spec.AckWait)
	s.work = make(chan queued, s.spec.Prefetch)
	s.pumped = make(chan struct{})
	for range s.spec.Concurrency {
		s.workers.Go(func() {
			for q := range s.work {
				s.handle(q)
			}
		})
	}
	if s.stream != nil {
		adv, err := s.b.nc.Subscribe(maxDeliveriesSubject(s.spec.Stream, s.spec.Durable), s.onMaxDeliveries)
		if err != nil {
			s.stopWorkers()
			return fmt.Errorf("bus: watching max-deliveries advisories of %s: %w", s.spec.Durable, err)
		}
		s.advisory = adv
	}
	go s.pump()
	go s.fetcher.KeepAlive(s.done)
	go s.lifecycle()
	go s.watch()
	return nil
}

// Healthy reports whether the durable consumer exists on the server and is
// being served; the error says why not. A service's readiness includes it
// (libs/service).
func (s *Subscription) Healthy() error {
	if why := s.unhealthy.Load(); why != nil {
		return fmt.Errorf("consumer %s/%s: %s", s.spec.Stream, s.spec.Durable, *why)
	}
	return nil
}

func (s *Subscription) setUnhealthy(why string) { s.unhealthy.Store(&why) }

// check asks the watchdog to look now.
func (s *Subscription) check() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// watch checks, every ConsumerCheckInterval or when kicked, that the
// durable consumer exists and is consumed, re-creating it (on the second
// tick that finds it missing, so readiness shows the gap) if it was deleted
// on the server (by an operator, or lost with a stream) so the service does
// not sit there connected and receiving nothing. A re-created durable starts
// with the messages still in the stream, so none is lost; handlers are
// idempotent, so those redelivered are harmless.
func (s *Subscription) watch() {
	t := time.NewTicker(s.b.cfg.ConsumerCheckInterval)
	defer t.Stop()
	missing := false // seen deleted on an earlier check
	for {
		select {
		case <-s.stopping:
			return
		case <-t.C:
			missing = s.verify(missing)
		case <-s.kick:
			missing = s.verify(false) || missing
		}
	}
}

// verify checks the consumer and reports whether it is missing on the
// server. A missing consumer is re-created only if recreate (it was missing
// on the previous tick already), so readiness shows the gap for at least an
// interval rather than flickering.
func (s *Subscription) verify(recreate bool) (missing bool) {
	ctx, cancel := context.WithTimeout(s.runCtx, 5*time.Second)
	defer cancel()
	cons, err := s.b.js.Consumer(ctx, s.spec.Stream, s.spec.Durable)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		s.setUnhealthy("consumer deleted on the server; re-creating it")
		if !recreate {
			return true
		}
		if cons, err = s.b.js.CreateOrUpdateConsumer(ctx, s.spec.Stream, s.spec.ConsumerConfig()); err != nil {
			s.setUnhealthy("consumer deleted on the server; re-creating it failed: " + err.Error())
			s.log.Error("re-creating the deleted consumer failed; retrying", "error", err)
			return true
		}
		s.log.Warn("consumer re-created after it was deleted on the server")
		s.reconsume(cons)
	case err != nil:
		s.setUnhealthy("cannot check the consumer on the server: " + err.Error())
	case s.fetchErr.Load():
		// Its fetches fail although it is there: the pump says why.
	default:
		s.unhealthy.Store(nil)
	}
	return false
}

// reconsume makes the pump fetch from cons, the re-created consumer.
func (s *Subscription) reconsume(cons jetstream.Consumer) {
	s.fetcher.SetConsumer(cons)
	s.fetchErr.Store(false)
	s.unhealthy.Store(nil)
}

func (s *Subscription) stopWorkers() {
	s.stopPump()
	close(s.work)
	s.workers.Wait()
	s.cancelRun()
}

// lifecycle finishes the subscription once Stop started draining: the
// last fetch ended, every held message handled, workers done, acks flushed
// to the server.
func (s *Subscription) lifecycle() {
	<-s.stopping
	<-s.pumped
	s.stopWorkers()
	if err := s.b.nc.FlushTimeout(5 * time.Second); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		s.log.Warn("flushing acks at stop", "error", err)
	}
	close(s.done)
}

// Durable is the consumer's durable name.
func (s *Subscription) Durable() string { return s.spec.Durable }

// Stop stops fetching, lets in-flight and already buffered messages be
// handled and settled, flushes their acks, and returns. If ctx ends first,
// handler contexts are cancelled, messages not yet handled are nak'ed for
// redelivery, and Stop returns ctx's error. Safe to call more than once.
func (s *Subscription) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() {
		if s.advisory != nil {
			_ = s.advisory.Unsubscribe()
		}
		close(s.stopping)
		s.stopPump()
	})
	defer s.b.removeSub(s)
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.abandon.Store(true)
		s.cancelRun()
		return fmt.Errorf("bus: stopping consumer %s/%s: %w (in-flight handlers cancelled; their messages will be redelivered)",
			s.spec.Stream, s.spec.Durable, ctx.Err())
	}
}

// handle handles one fetched message and settles it.
func (s *Subscription) handle(q queued) {
	defer s.fetcher.Release(q.held)
	msg := q.held.Msg
	if s.abandon.Load() {
		_ = msg.Nak() // Stop gave up: hand the message to another replica now
		return
	}
	md, err := msg.Metadata()
	if err != nil { // not a JetStream delivery; cannot happen on a pull consumer
		s.log.Error("message without JetStream metadata", "subject", msg.Subject(), "error", err)
		_ = msg.Term()
		return
	}
	hdr := msg.Headers()
	ctx := s.runCtx
	if tc, err := tracectx.Parse(hdr.Get(HeaderTraceparent)); err == nil {
		ctx = tracectx.WithTrace(ctx, tc.WithState(hdr.Get(HeaderTracestate)).Child())
	}
	d := &delivery{msg: msg, sub: s, held: q.held, info: Info{
		Subject:      msg.Subject(),
		Stream:       md.Stream,
		Consumer:     md.Consumer,
		StreamSeq:    md.Sequence.Stream,
		NumDelivered: md.NumDelivered,
		MaxDeliver:   s.spec.MaxDeliver,
		Stored:       md.Timestamp,
		Header:       hdr,
	}}

	ev, reason := s.decode(msg)
	if reason != "" {
		s.deadLetter(tracectx.Ensure(ctx), d, reason)
		return
	}
	if _, ok := tracectx.FromContext(ctx); !ok {
		if tc, err := tracectx.Parse(ev.GetEnvelope().GetTrace().GetTraceparent()); err == nil {
			ctx = tracectx.WithTrace(ctx, tc.WithState(ev.GetEnvelope().GetTrace().GetTracestate()).Child())
		} else {
			ctx = tracectx.WithTrace(ctx, tracectx.New())
		}
	}

	start := time.Now()
	s.fetcher.Started(q.held, start.Add(s.budget))
	err, panicked := s.runRetryingUnavailable(ctx, ev, d, start)
	s.duration.Observe(time.Since(start).Seconds())

	switch {
	case err == nil:
		if err := msg.Ack(); err != nil {
			s.log.WarnContext(ctx, "ack failed; the message will be redelivered", "stream_seq", d.info.StreamSeq, "error", err)
		}
		s.handled[OutcomeAck].Inc()
	case IsPermanent(err):
		s.deadLetter(ctx, d, "permanent error: "+err.Error())
	case d.info.NumDelivered >= uint64(s.spec.MaxDeliver):
		s.deadLetter(ctx, d, fmt.Sprintf("delivery %d of %d failed: %v", d.info.NumDelivered, s.spec.MaxDeliver, err))
	default:
		outcome := OutcomeNak
		if panicked {
			outcome = OutcomePanic
		}
		if s.abandon.Load() {
			_ = msg.Nak() // stopping: let another replica take it now
			s.handled[outcome].Inc()
			return
		}
		delay := s.nakDelay(d.info.NumDelivered, err)
		if nerr := msg.NakWithDelay(delay); nerr != nil {
			s.log.WarnContext(ctx, "nak failed; the message will be redelivered after AckWait", "stream_seq", d.info.StreamSeq, "error", nerr)
		}
		s.log.WarnContext(ctx, "handler failed; will retry", "subject", d.info.Subject, "stream_seq", d.info.StreamSeq,
			"delivery", d.info.NumDelivered, "max_deliver", s.spec.MaxDeliver, "retry_in", delay, "error", err)
		s.handled[outcome].Inc()
	}
}

// unavailableRetryDelay is the pause before re-running a handler that failed
// because the bus or store was unavailable (a JetStream leader election, a
// reconnect): short, flat and jittered, since such an outage lasts seconds.
const unavailableRetryDelay = 500 * time.Millisecond

// runRetryingUnavailable runs the handler and, while it fails with an
// [Unavailable] error, re-runs it in place after unavailableRetryDelay,
// restarting AckWait with InProgress each time. Retrying within the same
// delivery, rather than nak'ing, keeps the retries off the back-off schedule
// and off the server's delivery count, so an outage never dead-letters a
// message. It stops when the subscription stops or the progress signal fails
// (the message is then settled by the last error as usual).
func (s *Subscription) runRetryingUnavailable(ctx context.Context, ev Event, d *delivery, received time.Time) (error, bool) {
	for {
		hctx, release := newHandlerContext(ctx, d, received, s.budget)
		err, panicked := s.run(hctx, ev, d)
		expired := hctx.Err() != nil // the handler's own budget ran out, or the subscription stopped
		release()
		if panicked || expired || !Unavailable(err) {
			return err, panicked
		}
		delay := unavailableRetryDelay + rand.N(unavailableRetryDelay/5+1)
		s.log.WarnContext(ctx, "bus or store unavailable; retrying the handler in place", "subject", d.info.Subject,
			"stream_seq", d.info.StreamSeq, "retry_in", delay, "error", err)
		s.handled[OutcomeRetryInPlace].Inc()
		select {
		case <-time.After(delay):
		case <-s.stopping:
			return err, false
		case <-ctx.Done():
			return err, false
		}
		if perr := d.msg.InProgress(); perr != nil {
			return err, false
		}
		d.progressed()
		received = time.Now()
	}
}

// decode returns the event, or the reason it cannot be handled.
func (s *Subscription) decode(msg jetstream.Msg) (Event, string) {
	if typ := msg.Headers().Get(HeaderType); typ != "" && typ != s.typeName {
		return nil, fmt.Sprintf("unexpected type %s: consumer handles %s", typ, s.typeName)
	}
	ev := s.newEvent()
	if err := proto.Unmarshal(msg.Data(), ev); err != nil {
		return nil, fmt.Sprintf("cannot decode %s payload (%d bytes): %v", s.typeName, len(msg.Data()), err)
	}
	if err := validateEnvelope(ev.GetEnvelope()); err != nil {
		return nil, fmt.Sprintf("undecodable %s: %v", s.typeName, err)
	}
	return ev, ""
}

// run calls the handler, turning a panic into an error.
func (s *Subscription) run(ctx context.Context, ev Event, d *delivery) (err error, panicked bool) {
	defer func() {
		if r := recover(); r != nil {
			s.log.ErrorContext(ctx, "handler panicked", "subject", d.info.Subject, "stream_seq", d.info.StreamSeq,
				"delivery", d.info.NumDelivered, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err, panicked = fmt.Errorf("%w: %v", ErrHandlerPanic, r), true
		}
	}()
	return s.call(ctx, ev), false
}

// nakDelay is the delay before delivery n+1 after delivery n failed with err.
func (s *Subscription) nakDelay(n uint64, err error) time.Duration {
	if d, ok := retryDelay(err); ok {
		return d
	}
	i := min(max(int(n), 1)-1, len(s.spec.BackOff)-1)
	d := s.spec.BackOff[i]
	return d + rand.N(d/5+1)
}

// deadLetter publishes the message to the dead-letter subject and terminates
// it; if the publish fails it naks instead, so nothing is lost.
func (s *Subscription) deadLetter(ctx context.Context, d *delivery, reason string) {
	reason = HeaderSafe(reason)
	log := s.log.With("subject", d.info.Subject, "stream_seq", d.info.StreamSeq, "delivery", d.info.NumDelivered, "reason", reason)
	if s.spec.DisableDeadLetter {
		if err := d.msg.TermWithReason(reason); err != nil {
			log.WarnContext(ctx, "term failed; the message will be redelivered", "error", err)
		}
		log.ErrorContext(ctx, "message terminated (dead-lettering disabled)")
		s.handled[OutcomeTerm].Inc()
		return
	}
	if _, err := s.b.publishDeadLetter(ctx, s.spec.Stream, s.spec.Durable, d.info.Subject, d.msg.Data(), d.info.Header, d.info.StreamSeq, d.info.NumDelivered, reason); err != nil {
		delay := s.nakDelay(d.info.NumDelivered, nil)
		log.ErrorContext(ctx, "dead-letter publish failed; nak'ing so the message is not lost", "retry_in", delay, "error", err)
		_ = d.msg.NakWithDelay(delay)
		s.handled[OutcomeNak].Inc()
		return
	}
	if err := d.msg.TermWithReason(reason); err != nil {
		log.WarnContext(ctx, "term failed after dead-lettering; a redelivery will be dead-lettered again (de-duplicated)", "error", err)
	}
	log.ErrorContext(ctx, "message dead-lettered", "dlq_subject", DeadLetterSubject(s.spec.Stream, s.spec.Durable))
	s.handled[OutcomeDLQ].Inc()
}

// DeadLetterMsgID is the Nats-Msg-Id of a dead letter. It names the consumer
// as well as the stream sequence: two consumers may each give up on the same
// message, and neither dead letter may be dropped as the other's duplicate.
func DeadLetterMsgID(stream, durable string, seq uint64) string {
	return "dlq:" + stream + ":" + durable + ":" + strconv.FormatUint(seq, 10)
}

// maxDeliveriesAdvisory is the part of the server's
// io.nats.jetstream.advisory.v1.max_deliver advisory we use.
type maxDeliveriesAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// onMaxDeliveries dead-letters a message the server stopped delivering
// without the handler's verdict: its last delivery's ack wait expired (a hung
// handler, a crashed replica) or the last dead-letter publish failed.
func (s *Subscription) onMaxDeliveries(m *nats.Msg) {
	var adv maxDeliveriesAdvisory
	if err := json.Unmarshal(m.Data, &adv); err != nil || adv.StreamSeq == 0 {
		s.log.Warn("unreadable max-deliveries advisory", "error", err)
		return
	}
	reason := fmt.Sprintf("max deliveries (%d) exhausted without a verdict: the last delivery's ack wait (%s) expired or its outcome could not be recorded",
		s.spec.MaxDeliver, s.spec.AckWait)
	g, err := s.b.deadLetterGaveUp(s.runCtx, s.stream, s.spec.Stream, adv, reason, s.log)
	if err == nil && g != nil && !g.Repeated {
		s.handled[OutcomeDLQ].Inc()
	}
}
