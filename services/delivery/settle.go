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
	integrationv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/integration/v1"

	"github.com/crmslack/crmslack/services/delivery/internal/audit"
	"github.com/crmslack/crmslack/services/delivery/internal/command"
	"github.com/crmslack/crmslack/services/delivery/internal/deliver"
	"github.com/crmslack/crmslack/services/delivery/internal/failure"
	"github.com/crmslack/crmslack/services/delivery/internal/lanes"
	"github.com/crmslack/crmslack/services/delivery/internal/outcome"
)

// settler reports outcomes, writes their audit rows and settles messages.
//
// The common case, an outcome that needs no dead letter, is settled
// asynchronously: the outcome is published without waiting and its audit
// row added to the writer's current batch, the lane goes on to its next
// command (the Slack side of this one is done and in the ledger), and the
// acker acknowledges the message once the stream has the outcome, the
// ledger the result and the audit trail the row, or naks it if any of them
// failed, so the redelivery reports it again from the ledger (the outcome's
// event id and the row id make the repeat harmless). Many outcomes thus
// share one round trip and one insert.
type settler struct {
	bus      *bus.Bus
	rows     rowWriter
	now      func() time.Time
	log      *slog.Logger
	outcomes *prometheus.CounterVec
	latency  *prometheus.HistogramVec

	pending chan pendingAck
	acking  sync.WaitGroup
	mu      sync.RWMutex // closed and the sends on pending
	closed  bool
}

// rowWriter writes audit rows in batches (audit.Writer): Add returns at
// once, its wait until the row's batch is stored.
type rowWriter interface {
	Add(r audit.Row) (wait func(ctx context.Context) error)
}

// pendingAck is a message whose outcome is on its way to the stream (its
// result to the ledger, its row to the audit trail).
type pendingAck struct {
	f   jetstream.PubAckFuture
	out deliver.Outcome
	row func(ctx context.Context) error
	it  *lanes.Item
	// release ends the lanes' hold on the item (lanes.Item.Keep), which
	// keeps it alive and its redeliveries recognised until it is settled.
	release   func()
	cmd       *command.Command
	delivered uint64
}

// ackTimeout bounds the wait for an outcome's publish ack.
const ackTimeout = 10 * time.Second

// maxPendingAcks bounds the outcomes awaiting their ack; lanes wait beyond.
const maxPendingAcks = 4096

func newSettler(b *bus.Bus, rows rowWriter, now func() time.Time, reg prometheus.Registerer, log *slog.Logger) (*settler, error) {
	s := &settler{
		bus: b, rows: rows, now: now, log: log,
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
		s.settlePending(p, timer)
	}
}

// settlePending acks or naks p's message (its newest delivery) once its
// outcome, result and row are stored, or one of them failed.
func (s *settler) settlePending(p pendingAck, timer *time.Timer) {
	defer p.release()
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
		_ = p.it.Msg().NakWithDelay(time.Second)
		return
	}
	if err := s.waitRow(p.row); err != nil {
		s.log.Warn("writing a command's audit row failed; it is handed back and will be reported again from the ledger",
			"command", p.cmd.ID, "err", err)
		_ = p.it.Msg().NakWithDelay(auditRetryDelay(p.delivered))
		return
	}
	if err := p.it.Msg().Ack(); err != nil {
		s.log.Warn("ack failed; the command will be redelivered and replayed from the ledger", "command", p.cmd.ID, "err", err)
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
	var row func(context.Context) error
	if err == nil {
		row = s.rows.Add(rowOf(ev))
	}
	queued := false
	if err == nil {
		release := it.Keep()
		if queued = s.enqueue(pendingAck{f: f, out: out, row: row, it: it, release: release, cmd: cmd, delivered: it.Delivered()}); !queued {
			release()
		}
	}
	if !queued {
		if !s.publish(ctx, cmd, subject, ev) {
			return false
		}
		if err := out.Recorded(); err != nil {
			s.log.WarnContext(ctx, "recording the result failed; the command is handed back", "command", cmd.ID, "err", err)
			_ = msg.NakWithDelay(time.Second)
			return true
		}
		if row == nil {
			row = s.rows.Add(rowOf(ev))
		}
		if err := s.waitRow(row); err != nil {
			s.log.WarnContext(ctx, "writing the audit row failed; the command is handed back", "command", cmd.ID, "err", err)
			_ = msg.NakWithDelay(auditRetryDelay(it.Delivered()))
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
		delay := time.Duration(min(it.Delivered(), 10)) * time.Second
		s.log.ErrorContext(ctx, "dead-lettering failed; the command is handed back for redelivery", "command", cmd.ID,
			"retry_in", delay, "err", err)
		_ = msg.NakWithDelay(delay)
		return true
	}
	if !s.publish(ctx, cmd, subject, ev) {
		return false
	}
	if err := s.waitRow(s.rows.Add(rowOf(ev))); err != nil {
		// The dead letter and the outcome are stored (both de-duplicated):
		// the redelivery only writes the row again.
		s.log.WarnContext(ctx, "writing the audit row failed; the command is handed back", "command", cmd.ID, "err", err)
		_ = msg.NakWithDelay(auditRetryDelay(it.Delivered()))
		return true
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

// waitRow waits for an audit row's batch insert, which the writer bounds
// (audit.InsertTimeout): a context per row here cost a timer and a channel
// per post and could end no sooner.
func (s *settler) waitRow(wait func(context.Context) error) error {
	return wait(context.Background())
}

// auditRetryDelay is the pause before a command whose audit row could not
// be written (MongoDB down) comes back: it grows with the deliveries to 5
// minutes, so that DELIVERY_MAX_DELIVER (20) deliveries span about 45
// minutes of outage; each redelivery only replays the outcome from the
// ledger, it posts nothing.
func auditRetryDelay(delivered uint64) time.Duration {
	n := time.Duration(min(delivered, 20))
	return min(n*n*time.Second, 5*time.Minute)
}

// rowOf is the audit row of an outcome event.
func rowOf(ev bus.Event) audit.Row {
	switch ev := ev.(type) {
	case *integrationv1.DeliveryFailed:
		return audit.FromFailed(ev)
	case *integrationv1.DeliverySucceeded:
		return audit.FromSucceeded(ev)
	}
	panic(fmt.Sprintf("delivery: %T is not an outcome event", ev))
}
