package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crmslack/crmslack/libs/tracectx"
)

// maxDeliveriesSubject is the advisory subject of a stream's consumer ("*"
// for all of them).
func maxDeliveriesSubject(stream, durable string) string {
	return "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + stream + "." + durable
}

// GaveUp is a message the server stopped delivering to a consumer after its
// MaxDeliver, once dead-lettered.
type GaveUp struct {
	Consumer   string
	Msg        *jetstream.RawStreamMsg
	Deliveries uint64
	// Repeated: the dead letter was stored already (the advisory came
	// again, or another watcher handled it).
	Repeated bool
}

// MaxDeliveriesWatch configures [Bus.WatchMaxDeliveries].
type MaxDeliveriesWatch struct {
	Stream string
	// Accept picks the consumers handled; nil accepts every one.
	Accept func(consumer string) bool
	// Queue, when set, shares the advisories among the watchers of that
	// queue group (the replicas of a service), so one handles each.
	Queue string
	// Reason is the dead letter's reason.
	Reason func(deliveries uint64) string
	// Then, if set, is called after the message is dead-lettered.
	Then   func(ctx context.Context, g GaveUp)
	Logger *slog.Logger
}

// WatchMaxDeliveries dead-letters, as a [Subscription] does for its own
// consumer, every message of w.Stream that the server stopped delivering to
// an accepted consumer: for consumers not run through Subscribe.
func (b *Bus) WatchMaxDeliveries(ctx context.Context, w MaxDeliveriesWatch) (*nats.Subscription, error) {
	st, err := b.js.Stream(ctx, w.Stream)
	if err != nil {
		return nil, fmt.Errorf("bus: looking up stream %s: %w", w.Stream, err)
	}
	log := w.Logger
	if log == nil {
		log = b.log
	}
	runCtx := context.WithoutCancel(ctx)
	handle := func(m *nats.Msg) {
		var adv maxDeliveriesAdvisory
		if err := json.Unmarshal(m.Data, &adv); err != nil || adv.StreamSeq == 0 {
			log.Warn("unreadable max-deliveries advisory", "error", err)
			return
		}
		if w.Accept != nil && !w.Accept(adv.Consumer) {
			return
		}
		g, err := b.deadLetterGaveUp(runCtx, st, w.Stream, adv, w.Reason(adv.Deliveries), log)
		if err != nil || g == nil {
			return
		}
		if w.Then != nil {
			ctx, cancel := context.WithTimeout(runCtx, 10*time.Second)
			defer cancel()
			w.Then(ctx, *g)
		}
	}
	subj := maxDeliveriesSubject(w.Stream, "*")
	if w.Queue != "" {
		return b.nc.QueueSubscribe(subj, w.Queue, handle)
	}
	return b.nc.Subscribe(subj, handle)
}

// deadLetterGaveUp fetches the message an advisory names and dead-letters
// it. It returns nil, nil when the message is gone from the stream, and an
// error (logged) when it stays there undead-lettered.
func (b *Bus) deadLetterGaveUp(ctx context.Context, st jetstream.Stream, stream string, adv maxDeliveriesAdvisory, reason string, log *slog.Logger) (*GaveUp, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	raw, err := st.GetMsg(ctx, adv.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		log.Info("message past max deliveries is gone from the stream", "stream_seq", adv.StreamSeq)
		return nil, nil
	}
	if err != nil {
		log.Error("fetching message past max deliveries; it stays in the stream, not dead-lettered",
			"stream_seq", adv.StreamSeq, "error", err)
		return nil, err
	}
	if tc, err := tracectx.Parse(raw.Header.Get(HeaderTraceparent)); err == nil {
		ctx = tracectx.WithTrace(ctx, tc.Child())
	} else {
		ctx = tracectx.Ensure(ctx)
	}
	if err := b.ensureDeadLetterStreamOnce(ctx); err != nil {
		log.ErrorContext(ctx, "dead-lettering message past max deliveries failed; it stays in the stream", "stream_seq", adv.StreamSeq, "error", err)
		return nil, err
	}
	ack, err := b.publishDeadLetter(ctx, stream, adv.Consumer, raw.Subject, raw.Data, raw.Header, raw.Sequence, adv.Deliveries, reason)
	if err != nil {
		log.ErrorContext(ctx, "dead-lettering message past max deliveries failed; it stays in the stream",
			"stream_seq", adv.StreamSeq, "error", err)
		return nil, err
	}
	if !ack.Duplicate {
		log.ErrorContext(ctx, "message dead-lettered after max deliveries", "subject", raw.Subject, "consumer", adv.Consumer,
			"stream_seq", raw.Sequence, "reason", reason)
	}
	return &GaveUp{Consumer: adv.Consumer, Msg: raw, Deliveries: adv.Deliveries, Repeated: ack.Duplicate}, nil
}
