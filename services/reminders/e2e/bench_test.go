package e2e

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/identity"
	"github.com/crmslack/crmslack/libs/slackstandin"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/testkit/harness"
	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	remindersv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/reminders/v1"
	slackv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/slack/v1"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"

	"github.com/crmslack/crmslack/services/delivery"
)

// The design load: 100,000 reminders due within one minute, to 5,000
// users (20 each, three seconds apart: under Slack's one post per second
// per DM, which the egress keeps to).
var (
	benchReminders = flag.Int("reminders.n", 100_000, "reminders of BenchmarkReminderLateness")
	benchUsers     = flag.Int("reminders.users", 5_000, "users of BenchmarkReminderLateness")
	benchEgress    = flag.Bool("reminders.egress", true, "run the delivery service and measure to Slack; false measures to the hand-over only")
	benchLead      = flag.Duration("reminders.lead", 150*time.Second, "time from the start of a run to the first due reminder, for setting every timer")
)

// BenchmarkReminderLateness schedules -reminders.n activities through the
// CRM stream, each with one reminder, due spread over one minute, and
// measures each reminder's lateness from its due time to the moment the
// Slack stand-in accepted its DM (rate limits off in the stand-in; the
// egress on its defaults but for method tiers, off). It also reports the
// memory held per pending reminder, measured once every timer is set and
// none has fired: the REMINDERS stream's and the activity bucket's bytes
// per reminder (server storage), and the growth of the live heap of this
// process (NATS server, reminders and delivery all run in it) per
// reminder. The reminders service itself keeps nothing per reminder.
func BenchmarkReminderLateness(b *testing.B) {
	for b.Loop() {
		runLateness(b, *benchReminders, *benchUsers)
	}
}

func runLateness(b *testing.B, n, users int) {
	e := newEnv(b)
	std, apiURL := benchSlack(b, users)
	teams := benchTeams(b, std)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	start := time.Now()
	if *benchEgress {
		benchStartDelivery(b, e, teams, apiURL)
	}
	r := e.start(options{})
	enableAll(b, r, users)

	// Every timer is set before the first is due: publishing and handling
	// 100,000 activities takes about as long as they have.
	window := time.Minute
	lead := *benchLead
	base := time.Now().Add(lead).Truncate(time.Second)
	dueOf := make([]time.Time, n)
	evs := make([]bus.Published, 0, 1000)
	handedOver := recordHandOver(b, e.js, n)
	heapBase := liveHeap()
	flush := func() {
		if err := e.bus.PublishBatch(ctx, evs); err != nil {
			b.Fatal(err)
		}
		evs = evs[:0]
	}
	for i := range n {
		dueOf[i] = base.Add(time.Duration(i) * window / time.Duration(n))
		u := i % users
		a := &crmv1.Activity{
			Id: "b" + strconv.Itoa(i), Kind: crmv1.ActivityKind_ACTIVITY_KIND_EVENT, Version: 1, Subject: "B" + strconv.Itoa(i),
			StartAt: timestamppb.New(dueOf[i].Add(15 * time.Minute)), ReminderMinutesBefore: []int32{15}, TimeZone: "Europe/Paris",
			Owner:    &commonv1.CrmUserRef{Id: benchUser(u), Name: "User " + strconv.Itoa(u), Email: benchEmail(u)},
			Location: "https://meet.example.com/b" + strconv.Itoa(i),
		}
		evs = append(evs, bus.Published{Subject: topology.Activity(org, "scheduled"), Event: &crmv1.ActivityScheduled{Envelope: e.envelope(), Activity: a}})
		if len(evs) == cap(evs) {
			flush()
		}
	}
	flush()
	// Nothing has fired yet, so the stream holds exactly the timers.
	for streamMsgs(b, e.js, topology.StreamReminders) < uint64(n) {
		if time.Now().After(base) {
			b.Fatalf("%d of %d timers set in %v, past the first due time", streamMsgs(b, e.js, topology.StreamReminders), n, time.Since(start))
		}
		time.Sleep(100 * time.Millisecond)
	}
	setUp := time.Since(start)

	heapPending := int64(liveHeap()) - int64(heapBase)
	streamBytes := streamSize(b, e.js, topology.StreamReminders)
	kvBytes := streamSize(b, e.js, "KV_"+topology.BucketReminderActivities)

	// Everything due has a few minutes to arrive; what has not by then
	// is reported missing.
	b.ReportMetric(float64(streamBytes)/float64(n), "timer-B/pending")
	b.ReportMetric(float64(kvBytes)/float64(n), "activity-B/pending")
	b.ReportMetric(float64(heapPending)/float64(n), "heap-B/pending")
	b.ReportMetric(setUp.Seconds(), "setup-s")
	b.Logf("pending: %d timers in %d B of stream, %d activity states in %d B of bucket, heap grown by %d B", n, streamBytes, n, kvBytes, heapPending)

	wctx, cancel := context.WithDeadline(context.Background(), base.Add(window+5*time.Minute))
	defer cancel()
	if !*benchEgress {
		for handedOver.count() < n && wctx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
		}
		handP := percentiles(handedOver.lateness(dueOf))
		b.ReportMetric(handP[0], "p50-handover-ms")
		b.ReportMetric(handP[1], "p99-handover-ms")
		b.ReportMetric(handP[2], "max-handover-ms")
		b.Logf("%d reminders, timers set in %v; due -> handed to the egress (%d): p50 %.0f ms, p99 %.0f ms, max %.0f ms",
			n, setUp.Round(time.Millisecond), handedOver.count(), handP[0], handP[1], handP[2])
		return
	}
	msgs, err := std.WaitForMessages(wctx, n, slackstandin.MessageFilter{Team: team})
	if err != nil {
		msgs = std.Messages(slackstandin.MessageFilter{Team: team})
		b.Errorf("%d of %d reminders reached Slack within 5 minutes of the last due time", len(msgs), n)
	}
	seen := make([]bool, n)
	late := make([]time.Duration, 0, n)
	for _, m := range msgs {
		if i, ok := subjectIndex(m.Text); ok && !seen[i] {
			seen[i] = true
			late = append(late, m.Time.Sub(dueOf[i]))
		}
	}
	if len(msgs) != len(late) {
		b.Errorf("%d posts for %d reminders: some posted twice", len(msgs), len(late))
	}
	slackP := percentiles(late)
	handP := percentiles(handedOver.lateness(dueOf))
	b.ReportMetric(slackP[0], "p50-late-ms")
	b.ReportMetric(slackP[1], "p99-late-ms")
	b.ReportMetric(slackP[2], "max-late-ms")
	b.ReportMetric(handP[1], "p99-handover-ms")
	b.Logf("%d reminders to %d users, timers set in %v; due -> accepted by Slack: p50 %.0f ms, p99 %.0f ms, max %.0f ms; due -> handed to the egress: p50 %.0f ms, p99 %.0f ms, max %.0f ms",
		n, users, setUp.Round(time.Millisecond), slackP[0], slackP[1], slackP[2], handP[0], handP[1], handP[2])
}

// percentiles are p50, p99 and max in milliseconds.
func percentiles(d []time.Duration) [3]float64 {
	if len(d) == 0 {
		return [3]float64{}
	}
	slices.Sort(d)
	ms := func(x time.Duration) float64 { return float64(x.Microseconds()) / 1000 }
	return [3]float64{ms(d[len(d)/2]), ms(d[int(0.99*float64(len(d)-1))]), ms(d[len(d)-1])}
}

// handOver records when each reminder's post reached the egress's stream.
type handOver struct {
	mu sync.Mutex
	at []time.Time
}

func recordHandOver(b *testing.B, js jetstream.JetStream, n int) *handOver {
	b.Helper()
	h := &handOver{at: make([]time.Time, n)}
	c, err := js.OrderedConsumer(testkit.Context(b), topology.StreamSlackOut, jetstream.OrderedConsumerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	cc, err := c.Consume(func(m jetstream.Msg) {
		now := time.Now()
		var p slackv1.PostMessage
		if proto.Unmarshal(m.Data(), &p) != nil {
			return
		}
		if i, ok := subjectIndex(p.GetText()); ok && i < n {
			h.mu.Lock()
			h.at[i] = now
			h.mu.Unlock()
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cc.Stop)
	return h
}

func (h *handOver) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, at := range h.at {
		if !at.IsZero() {
			n++
		}
	}
	return n
}

func (h *handOver) lateness(due []time.Time) []time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []time.Duration
	for i, at := range h.at {
		if !at.IsZero() {
			out = append(out, at.Sub(due[i]))
		}
	}
	return out
}

func benchUser(u int) string  { return fmt.Sprintf("crm-u%05d", u) }
func benchEmail(u int) string { return fmt.Sprintf("u%05d@acme.example", u) }

// subjectIndex reads i back from a reminder's text `… "B<i>" …`.
func subjectIndex(text string) (int, bool) {
	_, rest, ok := strings.Cut(text, `"B`)
	if !ok {
		return 0, false
	}
	num, _, ok := strings.Cut(rest, `"`)
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(num)
	return i, err == nil
}

func streamState(b *testing.B, js jetstream.JetStream, name string) jetstream.StreamState {
	b.Helper()
	st, err := js.Stream(testkit.Context(b), name)
	if err != nil {
		b.Fatal(err)
	}
	info, err := st.Info(testkit.Context(b))
	if err != nil {
		b.Fatal(err)
	}
	return info.State
}

func streamSize(b *testing.B, js jetstream.JetStream, name string) uint64 {
	return streamState(b, js, name).Bytes
}

func streamMsgs(b *testing.B, js jetstream.JetStream, name string) uint64 {
	return streamState(b, js, name).Msgs
}

// benchSlack is the stand-in with the users of the run in Acme.
func benchSlack(b *testing.B, users int) (*slackstandin.Server, string) {
	b.Helper()
	seed := slackstandin.DefaultSeed()
	ws := &seed.Workspaces[0]
	for u := range users {
		ws.Users = append(ws.Users, slackstandin.User{
			ID: fmt.Sprintf("U0B%07d", u), Name: "u" + strconv.Itoa(u), RealName: "User " + strconv.Itoa(u), Email: benchEmail(u),
		})
	}
	std, err := slackstandin.New(slackstandin.Config{Seed: seed, RateLimits: slackstandin.RateLimits{Disabled: true}})
	if err != nil {
		b.Fatal(err)
	}
	if err := std.Start("127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(std.Close)
	return std, std.URL() + "/api/"
}

// benchTeams answers the egress's token requests as the team registry
// would.
type benchTeamsServer struct {
	teamsv1.UnimplementedTeamRegistryServiceServer
	std  *slackstandin.Server
	addr string
	once sync.Once
	tok  string
}

func benchTeams(b *testing.B, std *slackstandin.Server) *benchTeamsServer {
	b.Helper()
	f := &benchTeamsServer{std: std}
	f.addr = testkit.GRPCServer(b, identity.Teams, func(gs *grpc.Server) { teamsv1.RegisterTeamRegistryServiceServer(gs, f) })
	return f
}

func (f *benchTeamsServer) GetBotToken(_ context.Context, req *teamsv1.GetBotTokenRequest) (*teamsv1.GetBotTokenResponse, error) {
	if req.GetTeamId() != team {
		return nil, status.Error(codes.NotFound, "no such team")
	}
	f.once.Do(func() { f.tok = f.std.IssueBotToken(team) })
	return &teamsv1.GetBotTokenResponse{BotToken: f.tok}, nil
}

func (f *benchTeamsServer) ReportTokenFailure(context.Context, *teamsv1.ReportTokenFailureRequest) (*teamsv1.ReportTokenFailureResponse, error) {
	return &teamsv1.ReportTokenFailureResponse{Refreshed: false, Status: teamsv1.TeamStatus_TEAM_STATUS_BROKEN}, nil
}

// benchStartDelivery runs the egress on its defaults, with Slack's method
// tiers off (the stand-in's limits are off too) and no permalinks.
func benchStartDelivery(b *testing.B, e *env, teams *benchTeamsServer, apiURL string) {
	b.Helper()
	tiers, err := delivery.ParseTierOverrides("chat.postMessage=off,users.lookupByEmail=off,conversations.open=off")
	if err != nil {
		b.Fatal(err)
	}
	cfg := delivery.Config{
		Connections: harness.Connections(b, testkit.PKI(b), "delivery", e.nats.ClientURL(), e.mongo.URI()),
		TeamsAddr:   teams.addr, SlackAPIURL: apiURL,
		ResponseURLHosts: []string{"hooks.slack.com"}, ChannelRate: 1, ChannelBurst: 3, TierOverrides: tiers,
		Concurrency: 32, MaxInFlight: 20000, Partitions: topology.SlackOutPartitions, LeaseTTL: 5 * time.Second,
		MaxAttempts: 6, BackoffBase: 500 * time.Millisecond, BackoffMax: 30 * time.Second, SlackTimeout: 15 * time.Second,
		AckWait: 30 * time.Second, MaxDeliver: 20, LedgerTTL: 7 * 24 * time.Hour, Unconfirmed: "fail",
		Permalinks: false, AuditBatch: 500, AuditFlush: 50 * time.Millisecond,
	}
	ready := make(chan delivery.Addrs, 1)
	cfg.Ready = func(a delivery.Addrs) { ready <- a }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- delivery.Run(ctx, cfg, e.log.With("svc", "delivery"), prometheus.NewRegistry()) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		b.Fatalf("delivery did not start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		b.Fatal("delivery did not start within 30s")
	}
	b.Cleanup(func() {
		cancel()
		<-done
	})
}

// enableAll turns every user's reminders on, eight at a time.
func enableAll(b *testing.B, r *replica, users int) {
	b.Helper()
	g, ctx := errgroup.WithContext(testkit.Context(b))
	g.SetLimit(8)
	for u := range users {
		g.Go(func() error {
			_, err := r.prefs.SetPreferences(ctx, &remindersv1.SetPreferencesRequest{
				OrgId: org, User: &commonv1.CrmUserRef{Id: benchUser(u), Email: benchEmail(u)}, Enabled: true, TeamId: team,
			})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
}

// liveHeap is the heap in use after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
