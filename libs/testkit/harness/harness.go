// Package harness holds the pieces every service's end-to-end harness sets
// up the same way: the Slack stand-in, the CRM's bus with every stream, and
// readers of what the stack did (stream counts, metrics). It is apart from
// package testkit because it imports libs/bus, whose own tests use testkit.
package harness

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/slackstandin"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
)

// Standin starts the Slack stand-in on a loopback port and closes it when
// the test ends.
func Standin(t testing.TB, cfg slackstandin.Config) *slackstandin.Server {
	t.Helper()
	std, err := slackstandin.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := std.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(std.Close)
	return std
}

// Bus connects to natsURL under name (the CRM's is "e2e-crm") with the
// tests' NATS login, ensures every stream of the topology and closes the
// connection when the test ends.
func Bus(t testing.TB, natsURL, name string, log *slog.Logger) *bus.Bus {
	t.Helper()
	b, err := bus.Connect(testkit.Context(t), bus.Config{URL: natsURL, NATSOptions: []nats.Option{testkit.NATSLogin(t)}, Name: name, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	for _, sc := range topology.Streams(topology.StreamOptions{}) {
		if _, err := b.EnsureStream(testkit.Context(t), sc); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// StreamMsgs counts the messages stream holds.
func StreamMsgs(t testing.TB, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	st, err := js.Stream(testkit.Context(t), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(testkit.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

var eventSeq atomic.Int64

// EventID is a CRM event id unique in this process.
func EventID() string {
	return fmt.Sprintf("crm-%d-%d", time.Now().UnixNano(), eventSeq.Add(1))
}

// EnvInt reads a positive benchmark size from the environment, def when
// name is unset; a value that is not a positive number fails tb.
func EnvInt(tb testing.TB, name string, def int) int {
	v, ok := os.LookupEnv(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		tb.Fatalf("%s=%q is not a positive number", name, v)
	}
	tb.Logf("%s=%d instead of %d", name, n, def)
	return n
}

// Metric sums the counter and gauge values of the series of g named name
// that carry every label pair (name, value, name, value...); 0 if g cannot
// be gathered.
func Metric(g prometheus.Gatherer, name string, labels ...string) float64 {
	mfs, err := g.Gather()
	if err != nil {
		return 0
	}
	var total float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return total
}

// Envelope is the envelope the CRM puts on an event of org; an empty id
// gets a fresh one (EventID).
func Envelope(org, id string) *commonv1.Envelope {
	if id == "" {
		id = EventID()
	}
	return &commonv1.Envelope{EventId: id, OrgId: org, OccurredAt: timestamppb.Now(), SchemaVersion: 1, Producer: "e2e-crm"}
}

// Publish publishes evs in one batch, each on the subject its type and
// envelope name (topology.SubjectFor).
func Publish[E bus.Event](t testing.TB, b *bus.Bus, evs ...E) {
	t.Helper()
	items := make([]bus.Published, len(evs))
	for i, ev := range evs {
		subject, err := topology.SubjectFor(ev)
		if err != nil {
			t.Fatal(err)
		}
		items[i] = bus.Published{Subject: subject, Event: ev}
	}
	if err := b.PublishBatch(testkit.Context(t), items); err != nil {
		t.Fatal(err)
	}
}

// Republish publishes ev on subject again under the message id msgID, as a
// replay or a redelivery past the stream's duplicate window brings it: the
// stream keeps it, and the consumer must see it is a repeat.
func Republish(t testing.TB, js jetstream.JetStream, subject string, ev bus.Event, msgID string) {
	t.Helper()
	data, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(subject)
	m.Data = data
	m.Header.Set(jetstream.MsgIDHeader, msgID)
	m.Header.Set(bus.HeaderType, string(ev.ProtoReflect().Descriptor().FullName()))
	if _, err := js.PublishMsg(testkit.Context(t), m); err != nil {
		t.Fatal(err)
	}
}
