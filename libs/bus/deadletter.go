package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// maxReasonBytes caps a dead letter's reason, and a TermWithReason reason.
const maxReasonBytes = 1024

// DeadLetter publishes msg, a delivery of durable on stream, to that
// consumer's dead-letter subject "dlq.<stream>.<durable>" exactly as
// [Subscribe] does: the original payload and headers (the original
// Nats-Msg-Id moved to Crmslack-Dlq-Original-Msg-Id, other Nats-* directives
// dropped), the Crmslack-Dlq-* headers saying why (reason made
// [HeaderSafe]), and Nats-Msg-Id [DeadLetterMsgID], so a retried publish or
// a second replica dead-lettering the same message stores it once. It
// ensures the dead-letter stream on first use.
//
// DeadLetter does not settle msg. For a consumer of its own, the caller
// terminates msg (TermWithReason(HeaderSafe(reason))) once DeadLetter
// returned nil, and naks it otherwise, so nothing is lost.
func (b *Bus) DeadLetter(ctx context.Context, msg jetstream.Msg, stream, durable, reason string) error {
	md, err := msg.Metadata()
	if err != nil {
		return fmt.Errorf("bus: dead-lettering a message of %s/%s: no JetStream metadata: %w", stream, durable, err)
	}
	if err := b.ensureDeadLetterStreamOnce(ctx); err != nil {
		return err
	}
	_, err = b.publishDeadLetter(ctx, stream, durable, msg.Subject(), msg.Data(), msg.Headers(), md.Sequence.Stream, md.NumDelivered, reason)
	return err
}

// DeadLetterStored is [Bus.DeadLetter] for a message read back from its
// stream (jetstream.Stream.GetMsg), such as one the server stopped
// delivering after MaxDeliver: deliveries is how often it was delivered. It
// reports whether the dead letter was stored already (a duplicate).
func (b *Bus) DeadLetterStored(ctx context.Context, raw *jetstream.RawStreamMsg, stream, durable string, deliveries uint64, reason string) (duplicate bool, err error) {
	if raw == nil {
		return false, errors.New("bus: dead-lettering a nil stream message")
	}
	if err := b.ensureDeadLetterStreamOnce(ctx); err != nil {
		return false, err
	}
	ack, err := b.publishDeadLetter(ctx, stream, durable, raw.Subject, raw.Data, raw.Header, raw.Sequence, deliveries, reason)
	if err != nil {
		return false, err
	}
	return ack.Duplicate, nil
}

// publishDeadLetter publishes payload and headers of stream message seq to
// durable's dead-letter subject.
func (b *Bus) publishDeadLetter(ctx context.Context, stream, durable, subject string, data []byte, orig nats.Header, seq, deliveries uint64, reason string) (*jetstream.PubAck, error) {
	h := make(nats.Header, len(orig)+8)
	for k, v := range orig {
		switch {
		case k == HeaderMsgID:
			h[HeaderDLQOriginalMsgID] = slices.Clone(v)
		case strings.HasPrefix(k, "Nats-"):
			// Directives to the original stream (expected sequence, TTL,
			// rollup, schedule) must not act on the dead-letter stream.
		default:
			h[k] = slices.Clone(v)
		}
	}
	h.Set(HeaderMsgID, DeadLetterMsgID(stream, durable, seq))
	h.Set(HeaderDLQReason, HeaderSafe(reason))
	h.Set(HeaderDLQStream, stream)
	h.Set(HeaderDLQConsumer, durable)
	h.Set(HeaderDLQSubject, subject)
	h.Set(HeaderDLQDeliveries, strconv.FormatUint(deliveries, 10))
	h.Set(HeaderDLQStreamSeq, strconv.FormatUint(seq, 10))
	m := &nats.Msg{Subject: DeadLetterSubject(stream, durable), Data: data, Header: h}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ack, err := b.js.PublishMsg(ctx, m, jetstream.WithExpectStream(DeadLetterStream))
	if err != nil {
		return nil, fmt.Errorf("bus: dead-lettering %s seq %d: %w", stream, seq, err)
	}
	return ack, nil
}

// HeaderSafe makes s usable as a header value and an ack reason: control
// characters (a newline would break the protocol) become spaces, and it is
// cut to at most 1 KiB on a character boundary.
func HeaderSafe(s string) string {
	var sb strings.Builder
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			r = ' '
		}
		if sb.Len()+utf8.RuneLen(r) > maxReasonBytes {
			break
		}
		sb.WriteRune(r)
	}
	return sb.String()
}
