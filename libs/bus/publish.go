package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"

	"github.com/crmslack/crmslack/libs/tracectx"
)

// Message headers written by [Bus.Publish] and the dead-letter path.
const (
	// HeaderMsgID is JetStream's de-duplication id: the envelope's event id.
	HeaderMsgID = jetstream.MsgIDHeader
	// HeaderType is the protobuf full name of the payload, e.g.
	// "crmslack.crm.v1.RecordUpserted".
	HeaderType        = "Crmslack-Type"
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"

	HeaderDLQReason     = "Crmslack-Dlq-Reason"
	HeaderDLQStream     = "Crmslack-Dlq-Stream"
	HeaderDLQConsumer   = "Crmslack-Dlq-Consumer"
	HeaderDLQSubject    = "Crmslack-Dlq-Subject"
	HeaderDLQDeliveries = "Crmslack-Dlq-Deliveries"
	HeaderDLQStreamSeq  = "Crmslack-Dlq-Stream-Seq"
	// HeaderDLQOriginalMsgID keeps the original Nats-Msg-Id (the event id),
	// since the dead letter's own Nats-Msg-Id is the dead-letter id.
	HeaderDLQOriginalMsgID = "Crmslack-Dlq-Original-Msg-Id"
)

// Event is a protobuf event with the crmslack envelope; every generated
// event message satisfies it.
type Event interface {
	proto.Message
	GetEnvelope() *commonv1.Envelope
}

// Published is one item of [Bus.PublishBatch].
type Published struct {
	Subject string
	Event   Event
}

// Publish publishes ev on subject and waits for the stream's ack. A
// re-published event id inside the stream's Duplicates window is not stored
// again: the returned PubAck has Duplicate set and the original sequence.
//
// The trace in ctx (or, without one, the envelope's, or a new trace) goes
// into the traceparent/tracestate headers; an envelope without a trace gets
// that one too, so Publish may set ev's envelope.trace.
func (b *Bus) Publish(ctx context.Context, subject string, ev Event) (*jetstream.PubAck, error) {
	m, err := b.newMsg(ctx, subject, ev)
	if err != nil {
		return nil, err
	}
	ack, err := b.js.PublishMsg(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("bus: publishing %s (event %s) on %s: %w",
			m.Header.Get(HeaderType), m.Header.Get(HeaderMsgID), subject, err)
	}
	return ack, nil
}

// PublishBatch validates every item, publishes them asynchronously and waits
// for all the acks (or ctx). It returns nil only if every item was stored
// (or already present, as a duplicate). On error some items may have been
// stored: retrying the whole batch is safe inside the Duplicates window. The
// returned error joins one error per failed item.
func (b *Bus) PublishBatch(ctx context.Context, items []Published) error {
	msgs := make([]*nats.Msg, len(items))
	for i, it := range items {
		m, err := b.newMsg(ctx, it.Subject, it.Event)
		if err != nil {
			return fmt.Errorf("bus: batch item %d: %w", i, err)
		}
		msgs[i] = m
	}
	futures := make([]jetstream.PubAckFuture, len(msgs))
	for i, m := range msgs {
		f, err := b.publishAsync(ctx, m)
		if err != nil {
			// Wait for what is in flight so the caller can retry cleanly.
			werr := waitAcks(ctx, msgs[:i], futures[:i])
			return errors.Join(fmt.Errorf("bus: batch item %d (event %s): %w", i, m.Header.Get(HeaderMsgID), err), werr)
		}
		futures[i] = f
	}
	return waitAcks(ctx, msgs, futures)
}

// publishAsync publishes m, waiting (bounded by ctx) while too many async
// publishes are unacknowledged.
func (b *Bus) publishAsync(ctx context.Context, m *nats.Msg) (jetstream.PubAckFuture, error) {
	for {
		f, err := b.js.PublishMsgAsync(m)
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			return f, err
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w (while %d publishes await acks)", ctx.Err(), b.js.PublishAsyncPending())
		}
	}
}

func waitAcks(ctx context.Context, msgs []*nats.Msg, futures []jetstream.PubAckFuture) error {
	var errs []error
	for i, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			errs = append(errs, fmt.Errorf("bus: batch item %d (event %s): %w", i, msgs[i].Header.Get(HeaderMsgID), err))
		case <-ctx.Done():
			return errors.Join(append(errs, fmt.Errorf("bus: waiting for %d batch acks: %w", len(futures)-i, ctx.Err()))...)
		}
	}
	return errors.Join(errs...)
}

// newMsg validates ev and builds the message: payload, Nats-Msg-Id,
// Crmslack-Type and trace headers.
func (b *Bus) newMsg(ctx context.Context, subject string, ev Event) (*nats.Msg, error) {
	if err := validatePublishSubject(subject); err != nil {
		return nil, err
	}
	if ev == nil {
		return nil, fmt.Errorf("%w: nil event (subject %s)", ErrInvalidEnvelope, subject)
	}
	typ := string(ev.ProtoReflect().Descriptor().FullName())
	env := ev.GetEnvelope()
	if err := validateEnvelope(env); err != nil {
		return nil, fmt.Errorf("%w (type %s, subject %s)", err, typ, subject)
	}

	tc, ok := tracectx.FromContext(ctx)
	if !ok {
		if t := env.GetTrace(); t != nil {
			if parsed, err := tracectx.Parse(t.GetTraceparent()); err == nil {
				tc, ok = parsed.WithState(t.GetTracestate()), true
			}
		}
	}
	if !ok {
		tc = tracectx.New()
	}
	traceparent := tc.Traceparent()
	if env.GetTrace().GetTraceparent() == "" {
		env.Trace = &commonv1.TraceContext{Traceparent: traceparent, Tracestate: tc.State}
	}

	data, err := proto.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("bus: marshalling %s (event %s): %w", typ, env.GetEventId(), err)
	}
	h := nats.Header{
		HeaderMsgID:       []string{env.GetEventId()},
		HeaderType:        []string{typ},
		HeaderTraceparent: []string{traceparent},
	}
	if tc.State != "" {
		h[HeaderTracestate] = []string{tc.State}
	}
	return &nats.Msg{Subject: subject, Data: data, Header: h}, nil
}

func validateEnvelope(env *commonv1.Envelope) error {
	switch {
	case env == nil:
		return fmt.Errorf("%w: no envelope", ErrInvalidEnvelope)
	case env.GetEventId() == "":
		return fmt.Errorf("%w: envelope.event_id is empty", ErrInvalidEnvelope)
	case env.GetOrgId() == "":
		return fmt.Errorf("%w: envelope.org_id is empty (event %s)", ErrInvalidEnvelope, env.GetEventId())
	case strings.ContainsFunc(env.GetEventId(), unicode.IsControl):
		// It becomes the Nats-Msg-Id header, where a newline would break the protocol.
		return fmt.Errorf("%w: envelope.event_id %q contains a control character", ErrInvalidEnvelope, env.GetEventId())
	}
	return nil
}
