package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/topology"

	"github.com/crmslack/crmslack/services/delivery/internal/command"
	"github.com/crmslack/crmslack/services/delivery/internal/deliver"
	"github.com/crmslack/crmslack/services/delivery/internal/failure"
	"github.com/crmslack/crmslack/services/delivery/internal/lanes"
	"github.com/crmslack/crmslack/services/delivery/internal/outcome"
)

// settler reports outcomes and settles messages.
//
// The common case, an outcome that needs no dead letter, is settled
// asynchronously: the outcome is published without waiting, the lane goes
// on to its next command (the Slack side of this one is done and in the
// ledger), and the acker acknowledges the message once the stream has the
// outcome, or naks it if the publish failed, so the redelivery reports it
// again from the ledger. Many outcomes thus share one round trip.
type settler struct {
	bus      *bus.Bus
	now      func() time.Time
	log      *slog.Logger
	outcomes *prometheus.CounterVec
	latency  *prometheus.HistogramVec

	pending chan pendingAck
	acking  sync.WaitGroup
	mu      sync.RWMutex // closed and the sends on pending
	closed  bool
}

// pendingAck is a message whose outcome is on its way to the stream (and
// its result to the ledger).
type pendingAck struct {
	f   jetstream.PubAckFuture
	out deliver.Outcome
	msg jetstream.Msg
	cmd *command.Command
}

// ackTimeout bounds the wait for an outcome's publish ack.
const ackTimeout = 10 * time.Second

// maxPendingAcks bounds the outcomes awaiting their ack; lanes wait beyond.
const maxPendingAcks = 4096

func newSettler(b *bus.Bus, now func() time.Time, reg prometheus.Registerer, log *slog.Logger) (*settler, error) {
	s := &settler{
		bus: b, now: now, log: log,
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "crmslack", Subsystem: "delivery", Name: "commands_total",
			Help: "Commands settled, by kind and outcome (succeeded, duplicate, or the failure code).",
		}, []string{"kind", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "crmslack", Subsystem: "delivery", Name: "command_seconds",
			Help:    "Time from a command's enqueue to its settlement, by kind.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 12),
		}, []string{"kind"}),
		pending: make(chan pendingAck, maxPendingAcks),
	}
	for _, c := range []prometheus.Collector{s.outcomes, s.latency} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("registering metrics: %w", err)
			}
		}
	}
	s.acking.Go(s.ack)
	return s, nil
}

// close waits for the outcomes in flight and settles their messages. No
// settle may follow.
func (s *settler) close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.pending)
	}
	s.mu.Unlock()
	s.acking.Wait()
}

// enqueue hands p to the acker; false once the settler is closed (a lane
// outlived the drain timeout).
func (s *settler) enqueue(p pendingAck) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return false
	}
	s.pending <- p
	return true
}

// ack settles the pending messages in the order their outcomes were sent
// (acks come back in about that order).
func (s *settler) ack() {
	timer := time.NewTimer(ackTimeout)
	defer timer.Stop()
	for p := range s.pending {
		timer.Reset(ackTimeout)
		var err error
		select {
		case <-p.f.Ok():
		case err = <-p.f.Err():
		case <-timer.C:
			err = errors.New("no publish ack in time")
		}
		if rerr := p.out.Recorded(); rerr != nil && err == nil {
			err = fmt.Errorf("recording the result in the ledger: %w", rerr)
		}
		if err != nil {
			s.log.Warn("settling a command failed; it is handed back and will be reported from the ledger or the channel's history",
				"command", p.cmd.ID, "err", err)
			_ = p.msg.NakWithDelay(time.Second)
			continue
		}
		if err := p.msg.Ack(); err != nil {
			s.log.Warn("ack failed; the command will be redelivered and replayed from the ledger", "command", p.cmd.ID, "err", err)
		}
	}
}

// settle reports cmd's outcome and settles its message: acknowledged once
// the outcome is stored, or dead-lettered and terminated when the failure
// calls for it. It returns false, handing the message back, only if the
// outcome could not be published before delivery stopped: the redelivery
// reports it from the ledger.
func (s *settler) settle(ctx context.Context, it *lanes.Item, cmd *command.Command, out deliver.Outcome) bool {
	subject, ev := outcome.Event(cmd, out, s.now())
	msg := it.Msg()
	label := "succeeded"
	switch {
	case out.Failure != nil:
		label = out.Failure.Code.String()
		// The reason stays in the event: it may name a CRM user's email.
		s.log.InfoContext(ctx, "command failed", "command", cmd.ID, "kind", cmd.Kind, "org", cmd.Org, "team", cmd.Team,
			"code", out.Failure.Code.String(), "attempts", out.Attempts)
		if failure.DeadLetter(out.Failure.Code) {
			return s.settleDeadLetter(ctx, it, cmd, out, subject, ev)
		}
	case out.Duplicate:
		label = "duplicate"
	}
	f, err := s.bus.PublishAsync(ctx, subject, ev)
	if err != nil || !s.enqueue(pendingAck{f: f, out: out, msg: msg, cmd: cmd}) {
		if !s.publish(ctx, cmd, subject, ev) {
			return false
		}
		if err := out.Recorded(); err != nil {
			s.log.WarnContext(ctx, "recording the result failed; the command is handed back", "command", cmd.ID, "err", err)
			_ = msg.NakWithDelay(time.Second)
			return true
		}
		if err := msg.Ack(); err != nil {
			s.log.WarnContext(ctx, "ack failed; the command will be redelivered and replayed from the ledger", "command", cmd.ID, "err", err)
		}
	}
	s.count(cmd, label, it)
	return true
}

// settleDeadLetter copies the message to the dead-letter subject first and
// only then reports the failure and terminates the message: if the copy
// cannot be stored, the message is nak'ed (never terminated, so never lost)
// and its redelivery carries the command out again, with nothing reported
// in between.
func (s *settler) settleDeadLetter(ctx context.Context, it *lanes.Item, cmd *command.Command, out deliver.Outcome, subject string, ev bus.Event) bool {
	msg := it.Msg()
	if err := s.deadLetter(ctx, msg, out.Failure.Error()); err != nil {
		delay := time.Duration(min(it.Delivered, 10)) * time.Second
		s.log.ErrorContext(ctx, "dead-lettering failed; the command is handed back for redelivery", "command", cmd.ID,
			"retry_in", delay, "err", err)
		_ = msg.NakWithDelay(delay)
		return true
	}
	if !s.publish(ctx, cmd, subject, ev) {
		return false
	}
	_ = msg.TermWithReason(bus.HeaderSafe(out.Failure.Error()))
	s.count(cmd, out.Failure.Code.String(), it)
	return true
}

// publish publishes an outcome, retrying with a growing pause; it gives up,
// returning false, once ctx has ended (after at least three tries: a
// stopping delivery still gets an outcome out if it can).
func (s *settler) publish(ctx context.Context, cmd *command.Command, subject string, ev bus.Event) bool {
	for attempt := 1; ; attempt++ {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		_, err := s.bus.Publish(pctx, subject, ev)
		cancel()
		if err == nil {
			return true
		}
		s.log.WarnContext(ctx, "publishing an outcome failed", "command", cmd.ID, "attempt", attempt, "err", err)
		if ctx.Err() != nil && attempt >= 3 {
			return false
		}
		pause := time.Duration(min(attempt, 10)) * 500 * time.Millisecond
		if ctx.Err() != nil {
			time.Sleep(pause) // stopping: the last tries are bounded by the attempt count
			continue
		}
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
}

func (s *settler) count(cmd *command.Command, label string, it *lanes.Item) {
	s.outcomes.WithLabelValues(string(cmd.Kind), label).Inc()
	if !it.Stored.IsZero() {
		s.latency.WithLabelValues(string(cmd.Kind)).Observe(s.now().Sub(it.Stored).Seconds())
	}
}

// reject dead-letters a message that is not a command at all.
func (s *settler) reject(ctx context.Context, msg jetstream.Msg, err error) {
	reason := err.Error()
	if derr := s.deadLetter(ctx, msg, reason); derr != nil {
		s.log.ErrorContext(ctx, "dead-lettering an undecodable command failed; it will be redelivered", "err", derr)
		_ = msg.NakWithDelay(5 * time.Second)
		return
	}
	_ = msg.TermWithReason(bus.HeaderSafe(reason))
	var seq uint64
	if md, err := msg.Metadata(); err == nil {
		seq = md.Sequence.Stream
	}
	s.log.ErrorContext(ctx, "undecodable command dead-lettered", "subject", msg.Subject(), "stream_seq", seq, "reason", reason)
}

// deadLetter copies msg to its consumer's dead-letter subject
// (dlq.SLACK_OUT.delivery-p<k>) through libs/bus, de-duplicated by stream
// sequence.
func (s *settler) deadLetter(ctx context.Context, msg jetstream.Msg, reason string) error {
	md, err := msg.Metadata()
	if err != nil {
		return fmt.Errorf("dead-lettering: %w", err)
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return s.bus.DeadLetter(pctx, msg, topology.StreamSlackOut, md.Consumer, reason)
}
