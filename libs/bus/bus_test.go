package bus_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/tracectx"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

// 1. A re-published event id is dropped by the stream and handled once.
func TestDuplicatePublishIsDroppedAndHandledOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	first := publish(t, e.bus, e.subject(), newEvent("evt-dup"))
	second := publish(t, e.bus, e.subject(), newEvent("evt-dup"))
	if first.Duplicate {
		t.Error("first publish reported as duplicate")
	}
	if !second.Duplicate {
		t.Error("second publish of the same event id not reported as duplicate")
	}
	if second.Sequence != first.Sequence {
		t.Errorf("duplicate ack sequence = %d, want the original %d", second.Sequence, first.Sequence)
	}

	rec := newRecorder()
	subscribe(t, e.bus, bus.ConsumerSpec{Stream: e.stream, Durable: "dedup"},
		func(ctx context.Context, ev *crmv1.RecordUpserted) error {
			rec.record(ctx, ev)
			return nil
		})
	// A later event, handled in order after the duplicate would have been.
	publish(t, e.bus, e.subject(), newEvent("evt-after"))
	testkit.Eventually(t, 10*time.Second, func() bool { return rec.count("evt-after") == 1 }, "evt-after handled")
	waitSettled(t, e.bus, e.stream, "dedup")
	if got := rec.count("evt-dup"); got != 1 {
		t.Errorf("handler saw evt-dup %d times, want 1", got)
	}
}

// 2. A nak'ed message comes back after the configured back-off, and the
// gaps grow with the schedule.
func TestNakRedeliversWithGrowingBackoff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		backOff  []time.Duration
		failures int
		err      error
		wantGaps []time.Duration // minimum gap before deliveries 2, 3, ...
	}{
		{
			name:     "schedule from BackOff",
			backOff:  []time.Duration{100 * time.Millisecond, 300 * time.Millisecond, 900 * time.Millisecond},
			failures: 3,
			err:      errors.New("crm unavailable"),
			wantGaps: []time.Duration{100 * time.Millisecond, 300 * time.Millisecond, 900 * time.Millisecond},
		},
		{
			name:     "last BackOff entry repeats",
			backOff:  []time.Duration{50 * time.Millisecond, 200 * time.Millisecond},
			failures: 3,
			err:      errors.New("crm unavailable"),
			wantGaps: []time.Duration{50 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond},
		},
		{
			name:     "RetryAfter overrides the schedule",
			backOff:  []time.Duration{50 * time.Millisecond},
			failures: 2,
			err:      bus.RetryAfter(errors.New("slack rate limited"), 400*time.Millisecond),
			wantGaps: []time.Duration{400 * time.Millisecond, 400 * time.Millisecond},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			rec := newRecorder()
			subscribe(t, e.bus, bus.ConsumerSpec{Stream: e.stream, Durable: "retry", BackOff: tt.backOff, MaxDeliver: 10},
				func(ctx context.Context, ev *crmv1.RecordUpserted) error {
					if rec.record(ctx, ev) <= tt.failures {
						return tt.err
					}
					return nil
				})
			publish(t, e.bus, e.subject(), newEvent("evt-retry"))
			testkit.Eventually(t, 15*time.Second, func() bool { return rec.count("evt-retry") == tt.failures+1 },
				"%d deliveries", tt.failures+1)
			waitSettled(t, e.bus, e.stream, "retry")

			times := rec.times("evt-retry")
			if len(times) != tt.failures+1 {
				t.Fatalf("%d deliveries, want %d", len(times), tt.failures+1)
			}
			var gaps []time.Duration
			for i := 1; i < len(times); i++ {
				gaps = append(gaps, times[i].Sub(times[i-1]))
			}
			t.Logf("gaps between deliveries: %v", gaps)
			for i, g := range gaps {
				if g < tt.wantGaps[i] {
					t.Errorf("gap before delivery %d = %s, want ≥ %s", i+2, g, tt.wantGaps[i])
				}
				// Far below AckWait (30 s): the redelivery came from the nak,
				// not from an ack timeout.
				if g > tt.wantGaps[i]+5*time.Second {
					t.Errorf("gap before delivery %d = %s, far above the back-off %s", i+2, g, tt.wantGaps[i])
				}
				if i > 0 && tt.wantGaps[i] > tt.wantGaps[i-1] && g <= gaps[i-1] {
					t.Errorf("gap before delivery %d (%s) did not grow from %s", i+2, g, gaps[i-1])
				}
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			for i, info := range rec.infos["evt-retry"] {
				if info.NumDelivered != uint64(i+1) {
					t.Errorf("delivery %d: MessageInfo.NumDelivered = %d", i+1, info.NumDelivered)
				}
			}
		})
	}
}

// 3. Messages that cannot be handled land on the dead-letter subject with
// their payload, headers and reason, and are not redelivered.
func TestDeadLetter(t *testing.T) {
	t.Parallel()
	garbage := []byte{0xff, 0xff, 0xff, 0xff, 0x0f}
	tests := []struct {
		name           string
		maxDeliver     int
		handler        func(ev *crmv1.RecordUpserted) error
		publishRaw     func(t *testing.T, e *env) (*nats.Msg, *jetstream.PubAck) // nil: publish a typed event
		wantDeliveries int                                                       // handler calls == dead letter's Crmslack-Dlq-Deliveries
		wantReason     string
		wantOutcomes   map[string]float64
	}{
		{
			name:           "keeps failing: dead-lettered after exactly MaxDeliver deliveries",
			maxDeliver:     3,
			handler:        func(*crmv1.RecordUpserted) error { return errors.New("crm unavailable") },
			wantDeliveries: 3,
			wantReason:     "delivery 3 of 3 failed: crm unavailable",
			wantOutcomes:   map[string]float64{bus.OutcomeNak: 2, bus.OutcomeDLQ: 1},
		},
		{
			name:           "permanent error: dead-lettered on the first delivery",
			maxDeliver:     5,
			handler:        func(*crmv1.RecordUpserted) error { return bus.Permanent(errors.New("record refused by the domain")) },
			wantDeliveries: 1,
			wantReason:     "permanent error: permanent: record refused by the domain",
			wantOutcomes:   map[string]float64{bus.OutcomeNak: 0, bus.OutcomeDLQ: 1},
		},
		{
			name:       "undecodable payload: dead-lettered without calling the handler",
			maxDeliver: 5,
			publishRaw: func(t *testing.T, e *env) (*nats.Msg, *jetstream.PubAck) {
				m := &nats.Msg{Subject: e.subject(), Data: garbage, Header: nats.Header{}}
				return m, rawPublish(t, e, m)
			},
			wantDeliveries: 0,
			wantReason:     "cannot decode crmslack.crm.v1.RecordUpserted payload",
			wantOutcomes:   map[string]float64{bus.OutcomeDLQ: 1},
		},
		{
			name:       "another type on the subject: dead-lettered",
			maxDeliver: 5,
			publishRaw: func(t *testing.T, e *env) (*nats.Msg, *jetstream.PubAck) {
				data, _ := proto.Marshal(&crmv1.RecordDeleted{Envelope: &commonv1.Envelope{EventId: "x", OrgId: testOrg}})
				m := &nats.Msg{Subject: e.subject(), Data: data, Header: nats.Header{bus.HeaderType: {"crmslack.crm.v1.RecordDeleted"}}}
				return m, rawPublish(t, e, m)
			},
			wantReason:   "unexpected type crmslack.crm.v1.RecordDeleted",
			wantOutcomes: map[string]float64{bus.OutcomeDLQ: 1},
		},
		{
			name:       "no envelope: dead-lettered",
			maxDeliver: 5,
			publishRaw: func(t *testing.T, e *env) (*nats.Msg, *jetstream.PubAck) {
				data, _ := proto.Marshal(&crmv1.RecordUpserted{Record: &crmv1.Record{Id: "r"}})
				m := &nats.Msg{Subject: e.subject(), Data: data, Header: nats.Header{}}
				return m, rawPublish(t, e, m)
			},
			wantReason:   "no envelope",
			wantOutcomes: map[string]float64{bus.OutcomeDLQ: 1},
		},
		{
			name:           "panicking handler: recovered, retried, then dead-lettered",
			maxDeliver:     2,
			handler:        func(*crmv1.RecordUpserted) error { panic("nil map in projection") },
			wantDeliveries: 2,
			wantReason:     "delivery 2 of 2 failed: bus: handler panicked: nil map in projection",
			wantOutcomes:   map[string]float64{bus.OutcomePanic: 1, bus.OutcomeDLQ: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := &env{srv: testkit.NATS(t), reg: prometheus.NewRegistry(), stream: streamName(t)}
			logs := &lockedBuffer{}
			var err error
			e.bus, err = bus.Connect(testkit.Context(t), bus.Config{
				URL: e.srv.ClientURL(), Name: t.Name(), Registerer: e.reg, NATSOptions: []nats.Option{testkit.NATSLogin(t)},
				Logger: slog.New(slog.NewJSONHandler(logs, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = e.bus.Close() })
			ensureStream(t, e.bus, e.stream)

			const durable = "dlq-test"
			var calls, okCalls atomic.Int32
			subscribe(t, e.bus, bus.ConsumerSpec{
				Stream: e.stream, Durable: durable, MaxDeliver: tt.maxDeliver,
				BackOff: []time.Duration{20 * time.Millisecond},
			}, func(ctx context.Context, ev *crmv1.RecordUpserted) error {
				if ev.GetEnvelope().GetEventId() == "evt-ok" {
					okCalls.Add(1)
					return nil
				}
				calls.Add(1)
				return tt.handler(ev)
			})

			var orig *nats.Msg
			var ack *jetstream.PubAck
			if tt.publishRaw != nil {
				orig, ack = tt.publishRaw(t, e)
			} else {
				ev := newEvent("evt-bad")
				ack = publish(t, e.bus, e.subject(), ev)
				data, err := proto.Marshal(ev)
				if err != nil {
					t.Fatal(err)
				}
				orig = &nats.Msg{Subject: e.subject(), Data: data, Header: nats.Header{
					bus.HeaderType: {"crmslack.crm.v1.RecordUpserted"}, bus.HeaderMsgID: {"evt-bad"},
				}}
			}

			dl := deadLetter(t, e.bus, e.stream, durable)
			waitSettled(t, e.bus, e.stream, durable)

			if got := int(calls.Load()); got != tt.wantDeliveries {
				t.Errorf("handler called %d times, want %d", got, tt.wantDeliveries)
			}
			if string(dl.Data) != string(orig.Data) {
				t.Errorf("dead letter payload = %x, want the original %x", dl.Data, orig.Data)
			}
			wantDeliveries := max(tt.wantDeliveries, 1)
			wantHeaders := map[string]string{
				bus.HeaderDLQStream:     e.stream,
				bus.HeaderDLQConsumer:   durable,
				bus.HeaderDLQSubject:    e.subject(),
				bus.HeaderDLQDeliveries: strconv.Itoa(wantDeliveries),
				bus.HeaderDLQStreamSeq:  strconv.FormatUint(ack.Sequence, 10),
				bus.HeaderMsgID:         bus.DeadLetterMsgID(e.stream, durable, ack.Sequence),
			}
			for k, v := range orig.Header { // the original headers travel along
				if k == bus.HeaderMsgID {
					wantHeaders[bus.HeaderDLQOriginalMsgID] = v[0]
					continue
				}
				wantHeaders[k] = v[0]
			}
			for k, want := range wantHeaders {
				if got := dl.Header.Get(k); got != want {
					t.Errorf("dead letter header %s = %q, want %q", k, got, want)
				}
			}
			if got := dl.Header.Get(bus.HeaderDLQReason); !strings.Contains(got, tt.wantReason) {
				t.Errorf("dead letter reason = %q, want it to contain %q", got, tt.wantReason)
			}
			// The outcome is counted once the message is settled, which the
			// consumer's state may show a moment before.
			for outcome, want := range tt.wantOutcomes {
				testkit.Eventually(t, 5*time.Second, func() bool { return counterValue(t, e.reg, e.stream, durable, outcome) == want },
					"handled_total{outcome=%q} = %v, want %v", outcome, lazy(func() string {
						return fmt.Sprint(counterValue(t, e.reg, e.stream, durable, outcome))
					}), want)
			}

			// The consumer is still alive (a panic did not kill it).
			publish(t, e.bus, e.subject(), newEvent("evt-ok"))
			testkit.Eventually(t, 10*time.Second, func() bool { return okCalls.Load() == 1 }, "evt-ok handled after the dead letter")

			if strings.Contains(tt.name, "panicking") {
				out := logs.String()
				if !strings.Contains(out, "handler panicked") || !strings.Contains(out, "goroutine ") {
					t.Errorf("panic not logged with its stack; log:\n%s", out)
				}
			}
			if strings.Contains(logs.String(), "record refused") && !strings.Contains(logs.String(), `"trace_id"`) {
				t.Errorf("dead-letter log line has no trace_id; log:\n%s", logs.String())
			}
		})
	}
}

func rawPublish(t *testing.T, e *env, m *nats.Msg) *jetstream.PubAck {
	t.Helper()
	ack, err := e.bus.JetStream().PublishMsg(testkit.Context(t), m)
	if err != nil {
		t.Fatalf("raw publish: %v", err)
	}
	return ack
}

// A handler that hangs past AckWait on the last delivery: the server's
// max-deliveries advisory gets the message dead-lettered anyway.
func TestHungLastDeliveryIsDeadLetteredFromAdvisory(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const durable = "hung"
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	var calls atomic.Int32
	s := subscribe(t, e.bus, bus.ConsumerSpec{Stream: e.stream, Durable: durable, MaxDeliver: 1, AckWait: time.Second, HandlerTimeout: time.Second},
		func(ctx context.Context, ev *crmv1.RecordUpserted) error {
			calls.Add(1)
			<-release // ignores ctx, like a handler stuck in a call without a timeout
			return nil
		})
	t.Cleanup(unblock) // runs before the Stop registered by subscribe
	ack := publish(t, e.bus, e.subject(), newEvent("evt-hung"))
	dl := deadLetter(t, e.bus, e.stream, durable)
	unblock()
	if got := dl.Header.Get(bus.HeaderDLQReason); !strings.Contains(got, "max deliveries (1) exhausted") {
		t.Errorf("reason = %q, want max deliveries exhausted", got)
	}
	if got := dl.Header.Get(bus.HeaderDLQStreamSeq); got != strconv.FormatUint(ack.Sequence, 10) {
		t.Errorf("stream seq header = %q, want %d", got, ack.Sequence)
	}
	if err := s.Stop(testkit.Context(t)); err != nil {
		t.Fatal(err)
	}
	if got := calls.Load(); got != 1 {
		t.Errorf("handler called %d times, want 1 (MaxDeliver 1)", got)
	}
}

// 4. Two replicas on separate connections sharing one durable handle each
// message exactly once between them.
func TestReplicasShareDurableExactlyOnce(t *testing.T) {
	t.Parallel()
	const n = 10_000
	e := newEnv(t)
	second := connect(t, e.srv, nil)
	const durable = "replicated"
	counts := make([]atomic.Int32, n)
	var perReplica [2]atomic.Int32
	var total atomic.Int32
	for i, b := range []*bus.Bus{e.bus, second} {
		subscribe(t, b, bus.ConsumerSpec{Stream: e.stream, Durable: durable, Concurrency: 2},
			func(ctx context.Context, ev *crmv1.RecordUpserted) error {
				idx, err := strconv.Atoi(strings.TrimPrefix(ev.GetEnvelope().GetEventId(), "evt-"))
				if err != nil {
					return bus.Permanent(err)
				}
				counts[idx].Add(1)
				perReplica[i].Add(1)
				total.Add(1)
				return nil
			})
	}
	const batch = 1000
	for start := 0; start < n; start += batch {
		items := make([]bus.Published, 0, batch)
		for i := start; i < start+batch; i++ {
			items = append(items, bus.Published{Subject: e.subject(), Event: newEvent(fmt.Sprintf("evt-%05d", i))})
		}
		if err := e.bus.PublishBatch(testkit.Context(t), items); err != nil {
			t.Fatalf("PublishBatch: %v", err)
		}
	}
	testkit.Eventually(t, 50*time.Second, func() bool { return total.Load() >= n },
		"all %d handled (so far %d)", n, lazy(func() string { return strconv.Itoa(int(total.Load())) }))
	waitSettled(t, e.bus, e.stream, durable)

	for i := range counts {
		if c := counts[i].Load(); c != 1 {
			t.Errorf("evt-%05d handled %d times, want exactly 1", i, c)
		}
	}
	a, b := perReplica[0].Load(), perReplica[1].Load()
	t.Logf("replica 1 handled %d, replica 2 handled %d", a, b)
	if a == 0 || b == 0 {
		t.Errorf("work not shared: replica 1 handled %d, replica 2 handled %d", a, b)
	}
	if a+b != n {
		t.Errorf("replicas handled %d in total, want %d", a+b, n)
	}
}

// 5. Stopping a consumer part-way and starting it again (optionally across a
// server restart on the same store), or restarting the server under a
// running consumer, loses nothing.
func TestConsumerRestartLosesNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		resubscribe   bool // Stop the first subscription and start a second one
		restartServer bool // restart nats-server (same store dir and port) part-way
	}{
		{name: "resubscribe", resubscribe: true},
		{name: "resubscribe after nats-server restart", resubscribe: true, restartServer: true},
		{name: "nats-server restart under a running consumer", restartServer: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const n = 1000
			e := newEnv(t)
			const durable = "restartable"
			// AckWait 2 s: a message the server sent to a subscription that
			// had stopped listening (or lost its connection) comes back soon.
			spec := bus.ConsumerSpec{Stream: e.stream, Durable: durable, AckWait: 2 * time.Second}
			var mu sync.Mutex
			seen := make(map[string]int)
			var handled atomic.Int32
			handler := func(ctx context.Context, ev *crmv1.RecordUpserted) error {
				mu.Lock()
				seen[ev.GetEnvelope().GetEventId()]++
				mu.Unlock()
				handled.Add(1)
				time.Sleep(time.Millisecond) // pace the handler so the interruption lands mid-batch
				return nil
			}
			items := make([]bus.Published, n)
			for i := range items {
				items[i] = bus.Published{Subject: e.subject(), Event: newEvent(fmt.Sprintf("evt-%04d", i))}
			}
			if err := e.bus.PublishBatch(testkit.Context(t), items); err != nil {
				t.Fatal(err)
			}

			first := subscribe(t, e.bus, spec, handler)
			testkit.Eventually(t, 10*time.Second, func() bool { return handled.Load() >= n/4 }, "a quarter handled")
			if tt.resubscribe {
				if err := first.Stop(testkit.Context(t)); err != nil {
					t.Fatalf("Stop: %v", err)
				}
			}
			atInterruption := handled.Load()
			if atInterruption >= n {
				t.Fatalf("all %d handled before the interruption; the test proves nothing", atInterruption)
			}
			t.Logf("%d handled before the interruption", atInterruption)

			if tt.restartServer {
				if err := e.srv.Restart(); err != nil {
					t.Fatalf("restarting nats-server: %v", err)
				}
				testkit.Eventually(t, 15*time.Second, func() bool { return e.bus.Conn().IsConnected() }, "bus reconnected")
			}
			if tt.resubscribe {
				subscribe(t, e.bus, spec, handler)
			}
			testkit.Eventually(t, 30*time.Second, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(seen) == n
			}, "all %d events handled (so far %s)", n, lazy(func() string {
				mu.Lock()
				defer mu.Unlock()
				return strconv.Itoa(len(seen))
			}))
			waitSettled(t, e.bus, e.stream, durable)
			mu.Lock()
			defer mu.Unlock()
			var again int
			for _, c := range seen {
				again += c - 1
			}
			t.Logf("%d redelivered (at least once is the contract)", again)
		})
	}
}

// 6. EnsureStream is idempotent, updates a changed config and refuses a
// de-duplication window below ten minutes.
func TestEnsureStream(t *testing.T) {
	t.Parallel()
	base := func(name string) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name: name, Subjects: []string{name + ".>"}, Storage: jetstream.FileStorage,
			Duplicates: 15 * time.Minute, MaxAge: 24 * time.Hour,
		}
	}
	tests := []struct {
		name    string
		second  func(jetstream.StreamConfig) jetstream.StreamConfig // nil: no second call
		wantErr bool
		check   func(t *testing.T, first, second *jetstream.StreamInfo)
		first   func(jetstream.StreamConfig) jetstream.StreamConfig
	}{
		{
			name:   "same config twice changes nothing",
			second: func(c jetstream.StreamConfig) jetstream.StreamConfig { return c },
			check: func(t *testing.T, first, second *jetstream.StreamInfo) {
				if !second.Created.Equal(first.Created) {
					t.Errorf("stream re-created: created %v, then %v", first.Created, second.Created)
				}
				if second.Config.Duplicates != first.Config.Duplicates || second.Config.MaxAge != first.Config.MaxAge {
					t.Errorf("config changed: %+v -> %+v", first.Config, second.Config)
				}
			},
		},
		{
			name: "changed config is applied in place",
			second: func(c jetstream.StreamConfig) jetstream.StreamConfig {
				c.MaxAge = 48 * time.Hour
				c.Duplicates = 20 * time.Minute
				c.Subjects = append(c.Subjects, "extra."+c.Name+".>")
				c.Description = "updated"
				return c
			},
			check: func(t *testing.T, first, second *jetstream.StreamInfo) {
				if !second.Created.Equal(first.Created) {
					t.Error("stream re-created instead of updated")
				}
				if second.Config.MaxAge != 48*time.Hour || second.Config.Duplicates != 20*time.Minute ||
					len(second.Config.Subjects) != 2 || second.Config.Description != "updated" {
					t.Errorf("update not applied: %+v", second.Config)
				}
			},
		},
		{
			name:    "duplicates window of 5 minutes refused",
			first:   func(c jetstream.StreamConfig) jetstream.StreamConfig { c.Duplicates = 5 * time.Minute; return c },
			wantErr: true,
		},
		{
			name:    "unset duplicates window (server default 2 minutes) refused",
			first:   func(c jetstream.StreamConfig) jetstream.StreamConfig { c.Duplicates = 0; return c },
			wantErr: true,
		},
		{
			name:    "lowering an existing stream below 10 minutes refused",
			second:  func(c jetstream.StreamConfig) jetstream.StreamConfig { c.Duplicates = 9 * time.Minute; return c },
			wantErr: true,
		},
	}
	srv := testkit.NATS(t)
	b := connect(t, srv, nil)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testkit.Context(t)
			cfg := base(fmt.Sprintf("ENSURE%d", i))
			if tt.first != nil {
				cfg = tt.first(cfg)
			}
			s, err := b.EnsureStream(ctx, cfg)
			if tt.second == nil {
				if tt.wantErr {
					if !errors.Is(err, bus.ErrInvalidConfig) {
						t.Fatalf("EnsureStream error = %v, want ErrInvalidConfig", err)
					}
					if _, err := b.JetStream().Stream(ctx, cfg.Name); !errors.Is(err, jetstream.ErrStreamNotFound) {
						t.Errorf("refused stream exists anyway (err %v)", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("first EnsureStream: %v", err)
			}
			first := s.CachedInfo()
			s2, err := b.EnsureStream(ctx, tt.second(cfg))
			if tt.wantErr {
				if !errors.Is(err, bus.ErrInvalidConfig) {
					t.Fatalf("second EnsureStream error = %v, want ErrInvalidConfig", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("second EnsureStream: %v", err)
			}
			tt.check(t, first, s2.CachedInfo())
		})
	}
	t.Run("dead-letter stream", func(t *testing.T) {
		t.Parallel()
		ctx := testkit.Context(t)
		for range 2 {
			s, err := b.EnsureDeadLetterStream(ctx)
			if err != nil {
				t.Fatalf("EnsureDeadLetterStream: %v", err)
			}
			c := s.CachedInfo().Config
			if c.Name != "DLQ" || len(c.Subjects) != 1 || c.Subjects[0] != "dlq.>" || c.MaxAge != 14*24*time.Hour ||
				c.Storage != jetstream.FileStorage || c.Retention != jetstream.LimitsPolicy {
				t.Errorf("dead-letter stream config = %+v", c)
			}
		}
	})
}

// 7. The trace context travels from the publisher's ctx (or the envelope) to
// the handler's ctx.
func TestTraceContextTravels(t *testing.T) {
	t.Parallel()
	parent := tracectx.New().WithState("crmslack=1")
	fromEnvelope := tracectx.New()
	tests := []struct {
		name      string
		ctx       func(context.Context) context.Context
		envelope  *commonv1.TraceContext
		wantTrace string // "" = any valid trace
		wantState string
	}{
		{name: "from the publisher's ctx", ctx: func(c context.Context) context.Context { return tracectx.WithTrace(c, parent) },
			wantTrace: parent.TraceIDString(), wantState: "crmslack=1"},
		{name: "from the envelope when ctx has none", ctx: func(c context.Context) context.Context { return c },
			envelope: &commonv1.TraceContext{Traceparent: fromEnvelope.Traceparent()}, wantTrace: fromEnvelope.TraceIDString()},
		{name: "a new trace when there is none", ctx: func(c context.Context) context.Context { return c }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			type seen struct{ trace, span, state, envTraceparent string }
			got := make(chan seen, 1)
			subscribe(t, e.bus, bus.ConsumerSpec{Stream: e.stream, Durable: "traced"},
				func(ctx context.Context, ev *crmv1.RecordUpserted) error {
					tc, _ := tracectx.FromContext(ctx)
					got <- seen{tracectx.TraceID(ctx), tracectx.SpanID(ctx), tc.State, ev.GetEnvelope().GetTrace().GetTraceparent()}
					return nil
				})
			ev := newEvent("evt-traced")
			ev.Envelope.Trace = tt.envelope
			if _, err := e.bus.Publish(tt.ctx(testkit.Context(t)), e.subject(), ev); err != nil {
				t.Fatal(err)
			}
			// Publish filled the envelope's trace when it had none.
			if ev.GetEnvelope().GetTrace().GetTraceparent() == "" {
				t.Error("Publish did not fill the envelope's trace")
			}
			var s seen
			select {
			case s = <-got:
			case <-testkit.Context(t).Done():
				t.Fatal("handler not called")
			}
			if len(s.trace) != 32 {
				t.Fatalf("handler ctx has no trace (trace id %q)", s.trace)
			}
			if tt.wantTrace != "" && s.trace != tt.wantTrace {
				t.Errorf("handler trace id = %s, want %s", s.trace, tt.wantTrace)
			}
			if s.span == parent.SpanIDString() || s.span == fromEnvelope.SpanIDString() {
				t.Error("handler runs in the publisher's span, want a child span")
			}
			if s.state != tt.wantState {
				t.Errorf("handler tracestate = %q, want %q", s.state, tt.wantState)
			}
			envTC, err := tracectx.Parse(s.envTraceparent)
			if err != nil || envTC.TraceIDString() != s.trace {
				t.Errorf("envelope trace %q does not carry the handler's trace %s (%v)", s.envTraceparent, s.trace, err)
			}
		})
	}
}

// 8. Stop waits for in-flight handlers and their acks.
func TestStopDrainsInFlightHandlers(t *testing.T) {
	t.Parallel()
	for _, concurrency := range []int{1, 4} {
		t.Run(fmt.Sprintf("concurrency %d", concurrency), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			const durable = "draining"
			started := make(chan string, concurrency)
			release := make(chan struct{})
			var finished atomic.Int32
			s, err := bus.Subscribe(testkit.Context(t), e.bus, bus.ConsumerSpec{
				Stream: e.stream, Durable: durable, Concurrency: concurrency, Prefetch: concurrency,
			}, func(ctx context.Context, ev *crmv1.RecordUpserted) error {
				started <- ev.GetEnvelope().GetEventId()
				<-release
				finished.Add(1)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for i := range concurrency {
				publish(t, e.bus, e.subject(), newEvent(fmt.Sprintf("evt-%d", i)))
			}
			for range concurrency {
				select {
				case <-started:
				case <-testkit.Context(t).Done():
					t.Fatal("handlers did not start")
				}
			}

			stopped := make(chan error, 1)
			go func() { stopped <- s.Stop(testkit.Context(t)) }()
			select {
			case err := <-stopped:
				t.Fatalf("Stop returned (%v) while %d handlers were in flight", err, concurrency)
			case <-time.After(200 * time.Millisecond): // bounded check that Stop is waiting
			}
			close(release)
			if err := <-stopped; err != nil {
				t.Fatalf("Stop: %v", err)
			}
			if got := finished.Load(); got != int32(concurrency) {
				t.Errorf("Stop returned with %d of %d handlers finished", got, concurrency)
			}
			// The acks reached the server before Stop returned: no polling.
			c, err := e.bus.JetStream().Consumer(testkit.Context(t), e.stream, durable)
			if err != nil {
				t.Fatal(err)
			}
			info, err := c.Info(testkit.Context(t))
			if err != nil {
				t.Fatal(err)
			}
			if info.NumAckPending != 0 || info.AckFloor.Stream != uint64(concurrency) {
				t.Errorf("after Stop: ack pending %d, ack floor %d; want 0 and %d", info.NumAckPending, info.AckFloor.Stream, concurrency)
			}
		})
	}
}

// Stop gives up at its ctx's deadline: handler contexts are cancelled and the
// message goes to the next subscription.
func TestStopGivesUpAtDeadlineAndMessageIsRedelivered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const durable = "impatient"
	started := make(chan struct{}, 1)
	var cancelled atomic.Bool
	s, err := bus.Subscribe(testkit.Context(t), e.bus, bus.ConsumerSpec{Stream: e.stream, Durable: durable},
		func(ctx context.Context, ev *crmv1.RecordUpserted) error {
			started <- struct{}{}
			<-ctx.Done()
			cancelled.Store(true)
			return ctx.Err()
		})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, e.bus, e.subject(), newEvent("evt-slow"))
	<-started
	ctx, cancel := context.WithTimeout(testkit.Context(t), 100*time.Millisecond)
	defer cancel()
	if err := s.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop error = %v, want DeadlineExceeded", err)
	}
	testkit.Eventually(t, 5*time.Second, cancelled.Load, "handler ctx cancelled")

	var again atomic.Int32
	subscribe(t, e.bus, bus.ConsumerSpec{Stream: e.stream, Durable: durable},
		func(ctx context.Context, ev *crmv1.RecordUpserted) error {
			again.Add(1)
			return nil
		})
	// Nak'ed at once, not after AckWait (10 s).
	testkit.Eventually(t, 5*time.Second, func() bool { return again.Load() == 1 }, "message redelivered to the new subscription")
}

// The handler's ctx: deadline at HandlerTimeout, metadata, InProgress
// extends both the server's ack timer and the deadline.
func TestHandlerContext(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const ackWait = 2 * time.Second
	type result struct {
		info             bus.Info
		ok               bool
		firstDeadline    time.Time
		extendedDeadline time.Time
		start            time.Time
		ctxErr           error
		progressErr      error
	}
	got := make(chan result, 10)
	subscribe(t, e.bus, bus.ConsumerSpec{Stream: e.stream, Durable: "ctx", AckWait: ackWait, HandlerTimeout: ackWait},
		func(ctx context.Context, ev *crmv1.RecordUpserted) error {
			var r result
			r.start = time.Now()
			r.info, r.ok = bus.MessageInfo(ctx)
			r.firstDeadline, _ = ctx.Deadline()
			// Work for 1.5 × AckWait, signalling progress: no redelivery, no expiry.
			for time.Since(r.start) < ackWait*3/2 {
				if err := bus.InProgress(ctx); err != nil {
					r.progressErr = err
				}
				select {
				case <-ctx.Done():
				case <-time.After(ackWait / 5):
				}
			}
			r.extendedDeadline, _ = ctx.Deadline()
			r.ctxErr = ctx.Err()
			got <- r
			return nil
		})
	ack := publish(t, e.bus, e.subject(), newEvent("evt-ctx"))
	var r result
	select {
	case r = <-got:
	case <-testkit.Context(t).Done():
		t.Fatal("handler not called")
	}
	waitSettled(t, e.bus, e.stream, "ctx")
	if len(got) != 0 {
		t.Error("message redelivered although the handler signalled progress")
	}
	if !r.ok || r.info.Subject != e.subject() || r.info.StreamSeq != ack.Sequence || r.info.NumDelivered != 1 ||
		r.info.Stream != e.stream || r.info.Consumer != "ctx" || r.info.MaxDeliver != bus.DefaultMaxDeliver ||
		r.info.Header.Get(bus.HeaderMsgID) != "evt-ctx" {
		t.Errorf("MessageInfo = %+v, %v", r.info, r.ok)
	}
	if budget := r.firstDeadline.Sub(r.start); budget <= 0 || budget > ackWait {
		t.Errorf("handler deadline %s after start, want within (0, HandlerTimeout %s]", budget, ackWait)
	}
	if !r.extendedDeadline.After(r.firstDeadline.Add(ackWait / 2)) {
		t.Errorf("InProgress did not extend the deadline: %v then %v", r.firstDeadline, r.extendedDeadline)
	}
	if r.ctxErr != nil || r.progressErr != nil {
		t.Errorf("ctx.Err() = %v, InProgress error %v; want both nil", r.ctxErr, r.progressErr)
	}
	if err := bus.InProgress(context.Background()); !errors.Is(err, bus.ErrNotHandling) {
		t.Errorf("InProgress outside a handler = %v, want ErrNotHandling", err)
	}
}

// Without InProgress the handler's ctx ends at HandlerTimeout, with
// DeadlineExceeded, and derived contexts see it too.
func TestHandlerContextDeadlineExpires(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	type result struct {
		err, childErr, cause error
		elapsed              time.Duration
	}
	got := make(chan result, 1)
	subscribe(t, e.bus, bus.ConsumerSpec{Stream: e.stream, Durable: "expiring", HandlerTimeout: time.Second},
		func(ctx context.Context, ev *crmv1.RecordUpserted) error {
			start := time.Now()
			child, cancel := context.WithCancel(ctx)
			defer cancel()
			<-child.Done()
			select {
			case got <- result{ctx.Err(), child.Err(), context.Cause(ctx), time.Since(start)}:
			default:
			}
			return nil
		})
	publish(t, e.bus, e.subject(), newEvent("evt-expire"))
	var r result
	select {
	case r = <-got:
	case <-testkit.Context(t).Done():
		t.Fatal("handler not called")
	}
	if !errors.Is(r.err, context.DeadlineExceeded) || !errors.Is(r.childErr, context.DeadlineExceeded) ||
		!errors.Is(r.cause, context.DeadlineExceeded) {
		t.Errorf("ctx.Err() = %v, child Err() = %v, Cause = %v; want DeadlineExceeded", r.err, r.childErr, r.cause)
	}
	if r.elapsed < time.Second || r.elapsed >= 2*time.Second {
		t.Errorf("handler ctx ended after %s, want at its HandlerTimeout (1s)", r.elapsed)
	}
}

func TestPublishRejectsInvalidEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tests := []struct {
		name    string
		subject string
		ev      bus.Event
		wantErr error
	}{
		{"nil event", e.subject(), nil, bus.ErrInvalidEnvelope},
		{"no envelope", e.subject(), &crmv1.RecordUpserted{}, bus.ErrInvalidEnvelope},
		{"no event id", e.subject(), &crmv1.RecordUpserted{Envelope: &commonv1.Envelope{OrgId: testOrg}}, bus.ErrInvalidEnvelope},
		{"no org id", e.subject(), &crmv1.RecordUpserted{Envelope: &commonv1.Envelope{EventId: "e"}}, bus.ErrInvalidEnvelope},
		{"newline in event id", e.subject(), &crmv1.RecordUpserted{Envelope: &commonv1.Envelope{EventId: "e\r\n", OrgId: testOrg}}, bus.ErrInvalidEnvelope},
		{"wildcard subject", e.stream + ".*", newEvent("e"), bus.ErrInvalidSubject},
		{"empty token", e.stream + "..x", newEvent("e"), bus.ErrInvalidSubject},
		{"empty subject", "", newEvent("e"), bus.ErrInvalidSubject},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := e.bus.Publish(testkit.Context(t), tt.subject, tt.ev); !errors.Is(err, tt.wantErr) {
				t.Errorf("Publish error = %v, want %v", err, tt.wantErr)
			}
			err := e.bus.PublishBatch(testkit.Context(t), []bus.Published{{Subject: e.subject(), Event: newEvent("ok")}, {Subject: tt.subject, Event: tt.ev}})
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("PublishBatch error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestPublishBatchReportsDuplicatesAsSuccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	items := []bus.Published{
		{Subject: e.subject(), Event: newEvent("a")},
		{Subject: e.subject(), Event: newEvent("b")},
		{Subject: e.subject(), Event: newEvent("a")},
	}
	for range 2 {
		if err := e.bus.PublishBatch(testkit.Context(t), items); err != nil {
			t.Fatalf("PublishBatch: %v", err)
		}
	}
	info, err := e.bus.JetStream().Stream(testkit.Context(t), e.stream)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.CachedInfo().State.Msgs; got != 2 {
		t.Errorf("stream holds %d messages, want 2 (a and b once each)", got)
	}
}

func TestSubscribeRefusesInvalidSpecs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ok := func(context.Context, *crmv1.RecordUpserted) error { return nil }
	tests := []struct {
		name string
		spec bus.ConsumerSpec
	}{
		{"no stream", bus.ConsumerSpec{Durable: "d"}},
		{"no durable", bus.ConsumerSpec{Stream: e.stream}},
		{"dotted durable", bus.ConsumerSpec{Stream: e.stream, Durable: "a.b"}},
		{"unbounded MaxDeliver", bus.ConsumerSpec{Stream: e.stream, Durable: "d", MaxDeliver: -1}},
		{"AckWait below a second", bus.ConsumerSpec{Stream: e.stream, Durable: "d", AckWait: 10 * time.Millisecond}},
		{"negative back-off", bus.ConsumerSpec{Stream: e.stream, Durable: "d", BackOff: []time.Duration{-time.Second}}},
		{"negative concurrency", bus.ConsumerSpec{Stream: e.stream, Durable: "d", Concurrency: -1}},
		{"MaxAckPending below Concurrency", bus.ConsumerSpec{Stream: e.stream, Durable: "d", Concurrency: 8, MaxAckPending: 4}},
		{"bad filter", bus.ConsumerSpec{Stream: e.stream, Durable: "d", FilterSubjects: []string{"a.>.b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.spec.Validate(); !errors.Is(err, bus.ErrInvalidConfig) {
				t.Errorf("Validate = %v, want ErrInvalidConfig", err)
			}
			if _, err := bus.Subscribe(testkit.Context(t), e.bus, tt.spec, ok); !errors.Is(err, bus.ErrInvalidConfig) {
				t.Errorf("Subscribe = %v, want ErrInvalidConfig", err)
			}
		})
	}
	t.Run("interface type parameter", func(t *testing.T) {
		t.Parallel()
		_, err := bus.Subscribe(testkit.Context(t), e.bus, bus.ConsumerSpec{Stream: e.stream, Durable: "d"},
			func(context.Context, bus.Event) error { return nil })
		if !errors.Is(err, bus.ErrInvalidConfig) {
			t.Errorf("Subscribe[bus.Event] = %v, want ErrInvalidConfig", err)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     bus.Config
		wantErr bool
	}{
		{"valid", bus.Config{URL: "nats://127.0.0.1:4222", Name: "svc"}, false},
		{"no URL", bus.Config{Name: "svc"}, true},
		{"no name", bus.Config{URL: "nats://127.0.0.1:4222"}, true},
		{"negative timeout", bus.Config{URL: "nats://x", Name: "svc", ConnectTimeout: -time.Second}, true},
		{"negative max pending", bus.Config{URL: "nats://x", Name: "svc", PublishAsyncMaxPending: -1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			if tt.wantErr != (err != nil) || (err != nil && !errors.Is(err, bus.ErrInvalidConfig)) {
				t.Errorf("Validate() = %v, want error: %v", err, tt.wantErr)
			}
		})
	}
}

func TestConnectFailsFastWithoutServer(t *testing.T) {
	t.Parallel()
	_, err := bus.Connect(testkit.Context(t), bus.Config{
		URL: "nats://127.0.0.1:1", Name: t.Name(), ConnectTimeout: 500 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err == nil {
		t.Fatal("Connect to a closed port succeeded")
	}
}

func TestFromConnLeavesConnectionOpen(t *testing.T) {
	t.Parallel()
	srv := testkit.NATS(t)
	nc := testkit.NATSConn(t, srv)
	b, err := bus.FromConn(nc, bus.Config{Logger: testkit.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	name := streamName(t)
	ensureStream(t, b, name)
	if _, err := b.Publish(testkit.Context(t), name+".x", newEvent("e")); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if nc.IsClosed() {
		t.Error("Close closed a connection the bus does not own")
	}
}

func TestErrorHelpers(t *testing.T) {
	t.Parallel()
	base := errors.New("boom")
	if bus.Permanent(nil) != nil || bus.RetryAfter(nil, time.Second) != nil {
		t.Error("wrapping nil did not return nil")
	}
	p := fmt.Errorf("handling: %w", bus.Permanent(base))
	if !bus.IsPermanent(p) || !errors.Is(p, bus.ErrPermanent) || !errors.Is(p, base) {
		t.Errorf("Permanent not detectable through wrapping: %v", p)
	}
	if bus.IsPermanent(base) || bus.IsPermanent(bus.RetryAfter(base, time.Second)) {
		t.Error("plain or RetryAfter error reported permanent")
	}
	if r := bus.RetryAfter(base, time.Second); !errors.Is(r, base) {
		t.Error("RetryAfter hides the cause")
	}
}

func TestMetricsShareRegistry(t *testing.T) {
	t.Parallel()
	srv := testkit.NATS(t)
	reg := prometheus.NewRegistry()
	connect(t, srv, reg)
	connect(t, srv, reg) // a second bus on the same registry reuses the collectors
}
