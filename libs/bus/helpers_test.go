package bus_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/localnats"
	"github.com/crmslack/crmslack/libs/testkit"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

const testOrg = "org-1"

// env is one test's server, bus and stream.
type env struct {
	srv    *localnats.Server
	bus    *bus.Bus
	reg    *prometheus.Registry
	stream string
}

// newEnv starts a server, connects a bus and ensures a stream named after
// the test, with subjects "<stream>.>".
func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{srv: testkit.NATS(t), reg: prometheus.NewRegistry(), stream: streamName(t)}
	e.bus = connect(t, e.srv, e.reg)
	ensureStream(t, e.bus, e.stream)
	return e
}

func streamName(t testing.TB) string {
	r := strings.NewReplacer("/", "_", ".", "_", " ", "_", "*", "_", ">", "_")
	return strings.ToUpper(r.Replace(t.Name()))
}

func connect(t testing.TB, srv *localnats.Server, reg prometheus.Registerer) *bus.Bus {
	t.Helper()
	b, err := bus.Connect(testkit.Context(t), bus.Config{
		URL:          srv.ClientURL(),
		NATSOptions:  []nats.Option{testkit.NATSLogin(t)},
		Name:         t.Name(),
		Logger:       testkit.Logger(t),
		Registerer:   reg,
		DrainTimeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatalf("bus.Connect: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("bus.Close: %v", err)
		}
	})
	return b
}

func ensureStream(t testing.TB, b *bus.Bus, name string) jetstream.Stream {
	t.Helper()
	s, err := b.EnsureStream(testkit.Context(t), jetstream.StreamConfig{
		Name:       name,
		Subjects:   []string{name + ".>"},
		Storage:    jetstream.FileStorage,
		Duplicates: bus.MinDuplicateWindow,
	})
	if err != nil {
		t.Fatalf("EnsureStream(%s): %v", name, err)
	}
	return s
}

func (e *env) subject() string { return e.stream + ".record.upserted" }

func newEvent(id string) *crmv1.RecordUpserted {
	return &crmv1.RecordUpserted{
		Envelope: &commonv1.Envelope{
			EventId:       id,
			OrgId:         testOrg,
			OccurredAt:    timestamppb.Now(),
			SchemaVersion: 1,
			Producer:      "bus-test",
		},
		Record: &crmv1.Record{Module: "Deals", Id: id, Version: 1},
	}
}

func publish(t testing.TB, b *bus.Bus, subject string, ev bus.Event) *jetstream.PubAck {
	t.Helper()
	ack, err := b.Publish(testkit.Context(t), subject, ev)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	return ack
}

func subscribe(t testing.TB, b *bus.Bus, spec bus.ConsumerSpec, h bus.Handler[*crmv1.RecordUpserted]) *bus.Subscription {
	t.Helper()
	s, err := bus.Subscribe(testkit.Context(t), b, spec, h)
	if err != nil {
		t.Fatalf("Subscribe(%s/%s): %v", spec.Stream, spec.Durable, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s
}

// recorder records, per event id, when each delivery reached the handler.
type recorder struct {
	mu    sync.Mutex
	calls map[string][]time.Time
	infos map[string][]bus.Info
}

func newRecorder() *recorder {
	return &recorder{calls: make(map[string][]time.Time), infos: make(map[string][]bus.Info)}
}

// record notes a delivery of ev and returns its number (1 on the first).
func (r *recorder) record(ctx context.Context, ev *crmv1.RecordUpserted) int {
	info, _ := bus.MessageInfo(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	id := ev.GetEnvelope().GetEventId()
	r.calls[id] = append(r.calls[id], time.Now())
	r.infos[id] = append(r.infos[id], info)
	return len(r.calls[id])
}

func (r *recorder) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls[id])
}

func (r *recorder) times(id string) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.calls[id]...)
}

// waitSettled waits until the consumer has nothing pending, in flight or
// awaiting redelivery, so counts taken afterwards are final.
func waitSettled(t testing.TB, b *bus.Bus, stream, durable string) {
	t.Helper()
	ctx := testkit.Context(t)
	var last string
	testkit.Eventually(t, 20*time.Second, func() bool {
		c, err := b.JetStream().Consumer(ctx, stream, durable)
		if err != nil {
			last = err.Error()
			return false
		}
		info, err := c.Info(ctx)
		if err != nil {
			last = err.Error()
			return false
		}
		last = fmt.Sprintf("pending %d, ack pending %d, redelivered %d", info.NumPending, info.NumAckPending, info.NumRedelivered)
		return info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0
	}, "consumer %s/%s settled (last: %s)", stream, durable, lazy(func() string { return last }))
}

// deadLetter waits for the last dead letter of the consumer and returns it.
func deadLetter(t testing.TB, b *bus.Bus, stream, durable string) *jetstream.RawStreamMsg {
	t.Helper()
	ctx := testkit.Context(t)
	var msg *jetstream.RawStreamMsg
	testkit.Eventually(t, 20*time.Second, func() bool {
		s, err := b.JetStream().Stream(ctx, bus.DeadLetterStream)
		if err != nil {
			return false
		}
		msg, err = s.GetLastMsgForSubject(ctx, bus.DeadLetterSubject(stream, durable))
		return err == nil
	}, "a dead letter on %s", bus.DeadLetterSubject(stream, durable))
	return msg
}

// counterValue reads crmslack_bus_handled_total for one outcome.
func counterValue(t testing.TB, reg *prometheus.Registry, stream, durable, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "crmslack_bus_handled_total" {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			want := map[string]string{"stream": stream, "consumer": durable, "outcome": outcome}
			for _, l := range m.GetLabel() {
				if want[l.GetName()] != l.GetValue() {
					continue metric
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// lockedBuffer is a log sink safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	sb strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sb.String()
}

// lazy formats as its result, computed when a failure message is rendered.
type lazy func() string

func (l lazy) String() string { return l() }
