package bus_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/testkit"
)

// TestDeadLetterExported: a consumer of its own dead-letters a message with
// the headers Subscribe writes, once however often it is asked to, and a
// reason made safe for a header.
func TestDeadLetterExported(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := testkit.Context(t)
	const durable = "own-consumer"
	orig := &nats.Msg{Subject: e.subject(), Data: []byte("payload"), Header: nats.Header{
		bus.HeaderMsgID:        {"evt-1"},
		"Crmslack-Type":        {"crmslack.crm.v1.RecordUpserted"},
		"Traceparent":          {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		"Nats-Expected-Stream": {e.stream},
	}}
	ack, err := e.bus.JetStream().PublishMsg(ctx, orig)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := e.bus.JetStream().CreateOrUpdateConsumer(ctx, e.stream, jetstream.ConsumerConfig{
		Durable: durable, AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}

	reason := "refused:\nline two\r\t" + strings.Repeat("é", 600)
	for range 2 { // a retry, or a second replica: stored once
		if err := e.bus.DeadLetter(ctx, msg, e.stream, durable, reason); err != nil {
			t.Fatal(err)
		}
	}
	if err := msg.TermWithReason(bus.HeaderSafe(reason)); err != nil {
		t.Fatal(err)
	}

	dl := deadLetter(t, e.bus, e.stream, durable)
	want := map[string]string{
		bus.HeaderMsgID:            bus.DeadLetterMsgID(e.stream, durable, ack.Sequence),
		bus.HeaderDLQOriginalMsgID: "evt-1",
		bus.HeaderDLQStream:        e.stream,
		bus.HeaderDLQConsumer:      durable,
		bus.HeaderDLQSubject:       e.subject(),
		bus.HeaderDLQDeliveries:    "1",
		bus.HeaderDLQStreamSeq:     strconv.FormatUint(ack.Sequence, 10),
		"Crmslack-Type":            "crmslack.crm.v1.RecordUpserted",
		"Traceparent":              orig.Header.Get("Traceparent"),
		"Nats-Expected-Stream":     bus.DeadLetterStream, // the dead letter's own directive, not the original's
	}
	for k, v := range want {
		if got := dl.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if string(dl.Data) != "payload" {
		t.Errorf("payload %q", dl.Data)
	}
	got := dl.Header.Get(bus.HeaderDLQReason)
	if got != bus.HeaderSafe(reason) || len(got) > 1024 || strings.ContainsAny(got, "\n\r\t") || !strings.HasPrefix(got, "refused: line two  ") {
		t.Errorf("reason %q (%d bytes)", got, len(got))
	}
	if !strings.HasSuffix(got, "é") {
		t.Errorf("reason cut inside a character: %q", got[len(got)-4:])
	}

	// Read back from the stream, as after max deliveries: same dead letter.
	s, err := e.bus.JetStream().Stream(ctx, e.stream)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	dup, err := e.bus.DeadLetterStored(ctx, raw, e.stream, durable, 7, "max deliveries")
	if err != nil || !dup {
		t.Errorf("DeadLetterStored of a dead-lettered message: duplicate=%v, %v", dup, err)
	}
	if dup, err := e.bus.DeadLetterStored(ctx, raw, e.stream, "other-consumer", 7, "max deliveries"); err != nil || dup {
		t.Errorf("another consumer's dead letter of the same message: duplicate=%v, %v", dup, err)
	}
	dls, err := e.bus.JetStream().Stream(ctx, bus.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := dls.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Errorf("%d dead letters, want 2 (one per consumer)", info.State.Msgs)
	}
}

func TestHeaderSafe(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                        "",
		"plain":                   "plain",
		"a\nb\x00c\x7fd":          "a b c d",
		strings.Repeat("x", 1030): strings.Repeat("x", 1024),
		strings.Repeat("€", 400):  strings.Repeat("€", 341), // 3 bytes each: 1023
	} {
		if got := bus.HeaderSafe(in); got != want {
			t.Errorf("HeaderSafe(%.20q…) = %.20q… (%d bytes), want %d bytes", in, got, len(got), len(want))
		}
	}
}
