// Package e2e runs the reminders service in-process on embedded NATS
// (JetStream, message schedules) and FerretDB, as the CRM, the team
// registry and the Slack egress see it: activity events in, preferences
// over gRPC, commands for the egress out.
package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/localmongo"
	"github.com/crmslack/crmslack/libs/localnats"
	"github.com/crmslack/crmslack/libs/orgaccess"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/testkit/harness"
	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	remindersv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/reminders/v1"
	slackv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/slack/v1"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"

	"github.com/crmslack/crmslack/services/reminders"
)

const (
	org    = "acme-crm"
	team   = "T0ACME0001"
	other  = "T0GLBX0001" // a team of another org
	alice  = "crm-alice"
	bob    = "crm-bob"
	aliceE = "alice@acme.example"
	bobE   = "bob@acme.example"
)

// env is one embedded NATS and FerretDB, the org_access bucket as the
// team registry writes it, and a CRM publishing events.
type env struct {
	t     testing.TB
	nats  *localnats.Server
	mongo *localmongo.Server
	js    jetstream.JetStream
	bus   *bus.Bus
	out   *outbox
	seq   atomic.Int64
	// log is the services' logger: debug lines in tests, warnings only in
	// benchmarks (debug logging would be what they measure).
	log *slog.Logger
	// buttonKey is every replica's REMINDERS_BUTTON_KEY.
	buttonKey string
}

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{t: t, nats: testkit.NATS(t), mongo: testkit.Mongo(t), log: testkit.Logger(t), buttonKey: testkit.RandomKey(t)}
	if _, bench := t.(*testing.B); bench {
		e.log = slog.New(slog.NewTextHandler(tbWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	nc := testkit.NATSConn(t, e.nats)
	e.js = testkit.JetStream(t, nc)
	var err error
	e.bus, err = bus.FromConn(nc, bus.Config{Logger: e.log})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testkit.Context(t)
	streams := append(topology.Select(topology.StreamOptions{}, topology.StreamCRM, topology.StreamSlackIn, topology.StreamSlackOut),
		topology.RemindersStream(topology.StreamOptions{}))
	if err := e.bus.EnsureStreams(ctx, streams...); err != nil {
		t.Fatal(err)
	}
	kv, err := orgaccess.Bucket(ctx, e.js, 1)
	if err != nil {
		t.Fatal(err)
	}
	a := &teamsv1.OrgAccess{OrgId: org, IntegrationEnabled: true, UpdatedAt: timestamppb.Now(),
		Teams: []*teamsv1.TeamAccess{{TeamId: team, Status: teamsv1.TeamStatus_TEAM_STATUS_ACTIVE}}}
	data, _ := proto.Marshal(a)
	if _, err := kv.Put(ctx, org, data); err != nil {
		t.Fatal(err)
	}
	if _, bench := t.(*testing.B); !bench {
		e.out = watchOut(t, e.js) // a benchmark records its own, lighter
	}
	return e
}

// replica is one running reminders service.
type replica struct {
	cancel context.CancelFunc
	done   chan error
	reg    *prometheus.Registry
	prefs  remindersv1.ReminderPreferencesServiceClient
}

type options struct {
	snooze    time.Duration
	lateAfter time.Duration
}

func (e *env) start(o options) *replica {
	e.t.Helper()
	if o.snooze == 0 {
		o.snooze = 10 * time.Minute
	}
	if o.lateAfter == 0 {
		o.lateAfter = time.Minute
	}
	r := &replica{done: make(chan error, 1), reg: prometheus.NewRegistry()}
	ready := make(chan reminders.Addrs, 1)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	cfg := reminders.Config{
		Connections: harness.Connections(e.t, testkit.PKI(e.t), "reminders", e.nats.ClientURL(), e.mongo.URI()),
		CRMBaseURL:  "https://crm.example.com/acme",
		Snooze:      o.snooze, LateAfter: o.lateAfter, ButtonKey: e.buttonKey,
		Ready: func(a reminders.Addrs) { ready <- a },
	}
	go func() { r.done <- reminders.Run(ctx, cfg, e.log.With("svc", "reminders"), r.reg) }()
	select {
	case a := <-ready:
		r.prefs = remindersv1.NewReminderPreferencesServiceClient(testkit.Dial(e.t, a.GRPC))
	case err := <-r.done:
		cancel()
		e.t.Fatalf("reminders did not start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		e.t.Fatal("reminders did not start within 30s")
	}
	e.t.Cleanup(func() { r.stop(e.t) })
	return r
}

func (r *replica) stop(t testing.TB) {
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("reminders.Run: %v", err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(40 * time.Second):
		t.Error("reminders.Run did not return within 40s")
	}
}

// metric sums a counter's series matching the label pairs.
func (r *replica) metric(name string, labels ...string) float64 {
	return harness.Metric(r.reg, name, labels...)
}

func (r *replica) enable(t testing.TB, user, email string) {
	t.Helper()
	_, err := r.prefs.SetPreferences(testkit.Context(t), &remindersv1.SetPreferencesRequest{
		OrgId: org, User: &commonv1.CrmUserRef{Id: user, Email: email}, Enabled: true, TeamId: team, TimeZone: "Europe/Paris",
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (e *env) envelope() *commonv1.Envelope {
	return &commonv1.Envelope{EventId: fmt.Sprintf("crm-%d-%d", time.Now().UnixNano(), e.seq.Add(1)), OrgId: org,
		OccurredAt: timestamppb.Now(), SchemaVersion: 1, Producer: "e2e-crm"}
}

// meeting is an activity whose 15-minute reminder is due at due.
func meeting(id string, version int64, due time.Time, participants ...*commonv1.CrmUserRef) *crmv1.Activity {
	start := due.Add(15 * time.Minute)
	return &crmv1.Activity{
		Id: id, Kind: crmv1.ActivityKind_ACTIVITY_KIND_EVENT, Version: version, Subject: "Demo " + id,
		StartAt: timestamppb.New(start), EndAt: timestamppb.New(start.Add(30 * time.Minute)), TimeZone: "Europe/Paris",
		ReminderMinutesBefore: []int32{15}, Owner: &commonv1.CrmUserRef{Id: alice, Name: "Alice Johnson", Email: aliceE},
		Participants: participants, Location: "https://meet.example.com/" + id,
		RelatedTo: &commonv1.RecordRef{Module: "Deals", Id: "d-1", Name: "Zylker"},
	}
}

func (e *env) publish(evs ...bus.Event) {
	e.t.Helper()
	var items []bus.Published
	for _, ev := range evs {
		subject, err := topology.SubjectFor(ev)
		if err != nil {
			e.t.Fatal(err)
		}
		items = append(items, bus.Published{Subject: subject, Event: ev})
	}
	if err := e.bus.PublishBatch(testkit.Context(e.t), items); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) scheduled(a *crmv1.Activity) bus.Event {
	return &crmv1.ActivityScheduled{Envelope: e.envelope(), Activity: a}
}

func (e *env) updated(a *crmv1.Activity) bus.Event {
	return &crmv1.ActivityUpdated{Envelope: e.envelope(), Activity: a}
}

// timers counts the timers (schedules) pending in the REMINDERS stream.
func (e *env) timers(filter string) uint64 {
	e.t.Helper()
	st, err := e.js.Stream(testkit.Context(e.t), topology.StreamReminders)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := st.Info(testkit.Context(e.t), jetstream.WithSubjectFilter(filter))
	if err != nil {
		e.t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

// outbox records every command sent to the Slack egress, in order, with
// when it arrived.
type outbox struct {
	mu    sync.Mutex
	posts []seen
	other []bus.Event
}

type seen struct {
	at   time.Time
	post *slackv1.PostMessage
}

func watchOut(t testing.TB, js jetstream.JetStream) *outbox {
	t.Helper()
	o := &outbox{}
	ctx := testkit.Context(t)
	c, err := js.OrderedConsumer(ctx, topology.StreamSlackOut, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := c.Consume(func(m jetstream.Msg) {
		now := time.Now()
		o.mu.Lock()
		defer o.mu.Unlock()
		switch {
		case strings.Contains(m.Subject(), ".post."):
			var p slackv1.PostMessage
			if err := proto.Unmarshal(m.Data(), &p); err == nil {
				o.posts = append(o.posts, seen{at: now, post: &p})
			}
		case strings.Contains(m.Subject(), ".respond."):
			var r slackv1.RespondToURL
			if err := proto.Unmarshal(m.Data(), &r); err == nil {
				o.other = append(o.other, &r)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return o
}

func (o *outbox) snapshot() []seen {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]seen(nil), o.posts...)
}

func (o *outbox) responds() []*slackv1.RespondToURL {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []*slackv1.RespondToURL
	for _, ev := range o.other {
		if r, ok := ev.(*slackv1.RespondToURL); ok {
			out = append(out, r)
		}
	}
	return out
}

// waitPosts waits for n posts in all and returns them.
func (o *outbox) waitPosts(t testing.TB, n int, timeout time.Duration) []seen {
	t.Helper()
	testkit.Eventually(t, timeout, func() bool { return len(o.snapshot()) >= n }, fmt.Sprintf("%d reminder posts", n))
	return o.snapshot()
}

// quiet says no more posts than n arrive within d.
func (o *outbox) quiet(t testing.TB, n int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if got := len(o.snapshot()); got > n {
			t.Fatalf("%d posts, want %d: %+v", got, n, o.snapshot()[n].post)
		}
		time.Sleep(testkit.Tick)
	}
}

// tbWriter writes log lines to the test's log.
type tbWriter struct{ t testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
