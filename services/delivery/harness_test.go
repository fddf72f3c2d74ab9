package delivery_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/devpki"
	"github.com/crmslack/crmslack/libs/identity"
	"github.com/crmslack/crmslack/libs/localmongo"
	"github.com/crmslack/crmslack/libs/localnats"
	"github.com/crmslack/crmslack/libs/orgaccess"
	"github.com/crmslack/crmslack/libs/rpc"
	"github.com/crmslack/crmslack/libs/slackstandin"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/testkit/harness"
	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	integrationv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/integration/v1"
	slackv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/slack/v1"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"

	"github.com/crmslack/crmslack/services/delivery"
	"github.com/crmslack/crmslack/services/delivery/internal/deliver"
)

// Workspaces and channels of the seed every test uses: the stand-in's
// default seed plus loadChannels channels in Acme that the bot is in, and
// teamChannels channels in each of Globex, Initech and Umbrella.
const (
	acme         = "T0ACME0001"
	globex       = "T0GLBX0001"
	initech      = "T0INTC0001"
	umbrella     = "T0UMBR0001"
	teamChannels = 5
	acmeGeneral  = "C0ACMEGNRL"
	acmeSales    = "C0ACMESALE"
	acmeRandom   = "C0ACMERAND" // the bot is not a member
	globexDeals  = "C0GLBXDEAL"
	acmeBot      = "U0ACMEBOT1"
	loadChannels = 60
)

// loadChannel is the i-th extra channel of Acme.
func loadChannel(i int) string { return fmt.Sprintf("C0LOAD%04d", i) }

// teams are the four workspaces of the seed.
var teams = []string{acme, globex, initech, umbrella}

// teamChannel is the i-th channel (i < teamChannels) of team that the
// bot is in: Acme's load channels, extra channels in the others.
func teamChannel(team string, i int) string {
	if team == acme {
		return loadChannel(i)
	}
	return fmt.Sprintf("C0%s%02d", team[2:6], i)
}

func seed() *slackstandin.Seed {
	s := slackstandin.DefaultSeed()
	ws := &s.Workspaces[0]
	for i := range loadChannels {
		ws.Channels = append(ws.Channels, slackstandin.Channel{
			ID: loadChannel(i), Name: fmt.Sprintf("load-%d", i), Members: []string{acmeBot, "U0ACME0ALC"},
		})
	}
	glbx := &s.Workspaces[1]
	for i := range teamChannels {
		glbx.Channels = append(glbx.Channels, slackstandin.Channel{
			ID: teamChannel(globex, i), Name: fmt.Sprintf("load-%d", i), Members: []string{glbx.Bot.UserID},
		})
	}
	for _, t := range []struct{ id, name, domain string }{{initech, "Initech", "initech"}, {umbrella, "Umbrella", "umbrella-corp"}} {
		w := slackstandin.Workspace{
			ID: t.id, Name: t.name, Domain: t.domain,
			Bot:   slackstandin.Bot{UserID: "U" + t.id[1:6] + "BOT1", BotID: "B" + t.id[1:6] + "BOT1", Name: "crmslack"},
			Users: []slackstandin.User{{ID: "U" + t.id[1:6] + "USR1", Name: "user", RealName: "A User", Email: "user@" + t.domain + ".example"}},
		}
		for i := range teamChannels {
			w.Channels = append(w.Channels, slackstandin.Channel{
				ID: teamChannel(t.id, i), Name: fmt.Sprintf("load-%d", i), Members: []string{w.Bot.UserID, w.Users[0].ID},
			})
		}
		s.Workspaces = append(s.Workspaces, w)
	}
	return s
}

// quietLogger logs warnings and errors to t.Log: load tests would drown
// in debug lines.
func quietLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tbWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tbWriter struct{ t testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // a late line after the test ended
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// env is one test's world: embedded NATS and FerretDB, the Slack stand-in
// behind a shim that times its posts, and a fake team registry.
type env struct {
	t      testing.TB
	nats   *localnats.Server
	mongo  *localmongo.Server
	slack  *slackstandin.Server
	shim   *shim
	url    string // the stand-in's base URL (through the shim)
	teams  *fakeTeams
	pki    *devpki.Dir
	nc     *nats.Conn
	js     jetstream.JetStream
	bus    *bus.Bus
	access jetstream.KeyValue
	out    *outcomes
	// probesPosted counts probe messages awaitAccess got through.
	probesPosted int
	// ackWait is envOptions.ackWait.
	ackWait time.Duration
}

type envOptions struct {
	// channel is the stand-in's chat.postMessage limit per channel.
	// Default: limits off.
	channel slackstandin.Limit
	// bench leaves out what only tests need and would be measured with the
	// product: the shim in front of the stand-in and the outcome watcher.
	bench bool
	// ackWait is the commands' AckWait. Default 3s.
	ackWait time.Duration
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	e := &env{t: t, ackWait: cmp.Or(o.ackWait, 3*time.Second)}
	e.nats = testkit.NATS(t)
	e.mongo = testkit.Mongo(t)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.url = "http://" + lis.Addr().String()
	rl := slackstandin.RateLimits{Disabled: o.channel == (slackstandin.Limit{})}
	if !rl.Disabled {
		rl.PostMessagePerChannel = o.channel
	}
	e.slack, err = slackstandin.New(slackstandin.Config{Seed: seed(), RateLimits: rl, PublicURL: e.url})
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = e.slack.Handler()
	if !o.bench {
		e.shim = newShim(h)
		h = e.shim
	}
	hs := &httptest.Server{Listener: lis, Config: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}}
	hs.Start()
	t.Cleanup(hs.Close)

	e.pki = testkit.PKI(t)
	e.teams = newFakeTeams(t, e.slack, e.pki)

	e.nc = testkit.NATSConn(t, e.nats)
	e.js = testkit.JetStream(t, e.nc)
	e.bus, err = bus.FromConn(e.nc, bus.Config{Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testkit.Context(t)
	// SLACK_OUT as every service will declare it once libs/topology has
	// the partition transform (see delivery.SlackOutStream).
	if _, err := e.bus.EnsureStream(ctx, delivery.SlackOutStream(topology.StreamOptions{SlackOutPartitions: testPartitions})); err != nil {
		t.Fatal(err)
	}
	for _, sc := range topology.Streams(topology.StreamOptions{}) {
		if sc.Name == topology.StreamIntegration {
			if _, err := e.bus.EnsureStream(ctx, sc); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.access, err = orgaccess.Bucket(ctx, e.js, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !o.bench {
		e.out = watchOutcomes(t, e.js)
	}
	return e
}

// testPartitions is the partition count of every test, the default.
const testPartitions = 8

// config is delivery's configuration for this env, quick to recover.
func (e *env) config() delivery.Config {
	return delivery.Config{
		Connections:      harness.Connections(e.t, e.pki, identity.Delivery, e.nats.ClientURL(), e.mongo.URI()),
		TeamsAddr:        e.teams.addr,
		SlackAPIURL:      e.url + "/api/",
		ResponseURLHosts: []string{"hooks.slack.com"},
		ChannelRate:      1000,
		ChannelBurst:     100,
		Concurrency:      32,
		MaxInFlight:      20000,
		Partitions:       testPartitions,
		LeaseTTL:         8 * time.Second, // renewals fenced after 4s: a loaded machine under -race stalls them for 2s
		MaxAttempts:      4,
		BackoffBase:      20 * time.Millisecond,
		BackoffMax:       200 * time.Millisecond,
		SlackTimeout:     2 * time.Second,
		AckWait:          e.ackWait,
		MaxDeliver:       20,
		LedgerTTL:        7 * 24 * time.Hour,
		Unconfirmed:      "fail",
		Permalinks:       true,
		AuditBatch:       200,
		AuditFlush:       20 * time.Millisecond,
	}
}

// running is a delivery started in-process.
type running struct {
	cancel context.CancelFunc
	done   chan error
	reg    *prometheus.Registry
	addrs  delivery.Addrs
}

func (e *env) start(cfg delivery.Config) *running {
	e.t.Helper()
	r := &running{done: make(chan error, 1), reg: prometheus.NewRegistry()}
	ready := make(chan delivery.Addrs, 1)
	cfg.Ready = func(a delivery.Addrs) { ready <- a }
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- delivery.Run(ctx, cfg, quietLogger(e.t), r.reg) }()
	select {
	case r.addrs = <-ready:
	case err := <-r.done:
		cancel()
		e.t.Fatalf("delivery did not start: %v", err)
	case <-time.After(20 * time.Second):
		cancel()
		e.t.Fatal("delivery did not start within 20s")
	}
	e.t.Cleanup(func() { r.stop(e.t) })
	return r
}

// stop cancels Run and waits for it.
func (r *running) stop(t testing.TB) {
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("delivery.Run: %v", err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(40 * time.Second):
		t.Error("delivery.Run did not return within 40s of its context ending")
	}
}

// metric reads a counter or gauge of r's registry, summed over the series
// matching labels (name=value pairs).
func (r *running) metric(name string, labels ...string) float64 {
	return harness.Metric(r.reg, name, labels...)
}

// setAccess writes org's OrgAccess into the bucket, as the registry would.
func (e *env) setAccess(org string, enabled bool, teams ...string) {
	e.t.Helper()
	a := &teamsv1.OrgAccess{OrgId: org, IntegrationEnabled: enabled, UpdatedAt: timestamppb.Now()}
	for _, t := range teams {
		a.Teams = append(a.Teams, &teamsv1.TeamAccess{TeamId: t, Status: teamsv1.TeamStatus_TEAM_STATUS_ACTIVE})
	}
	data, err := proto.Marshal(a)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.access.Put(testkit.Context(e.t), org, data); err != nil {
		e.t.Fatal(err)
	}
}

var eventSeq atomic.Int64

func newEnvelope(org string) *commonv1.Envelope {
	return &commonv1.Envelope{
		EventId:    fmt.Sprintf("cmd-%d-%d", time.Now().UnixNano(), eventSeq.Add(1)),
		OrgId:      org,
		OccurredAt: timestamppb.Now(),
		Producer:   "test",
	}
}

func channelTarget(c string) *slackv1.Target {
	return &slackv1.Target{Kind: &slackv1.Target_ChannelId{ChannelId: c}}
}

func postTo(org, team, channel, text string) *slackv1.PostMessage {
	return &slackv1.PostMessage{
		Envelope: newEnvelope(org), TeamId: team, Target: channelTarget(channel), Text: text,
		Origin: &slackv1.Origin{Service: "test", Purpose: "load"},
	}
}

// publish publishes commands in one batch.
func (e *env) publish(cmds ...bus.Event) {
	e.t.Helper()
	items := make([]bus.Published, 0, len(cmds))
	for _, c := range cmds {
		items = append(items, bus.Published{Subject: subjectOf(c), Event: c})
	}
	for i := 0; i < len(items); i += 1000 {
		if err := e.bus.PublishBatch(testkit.Context(e.t), items[i:min(i+1000, len(items))]); err != nil {
			e.t.Fatal(err)
		}
	}
}

func subjectOf(c bus.Event) string {
	org := c.GetEnvelope().GetOrgId()
	switch m := c.(type) {
	case *slackv1.PostMessage:
		return topology.SlackOut(org, m.GetTeamId(), "post")
	case *slackv1.UpdateMessage:
		return topology.SlackOut(org, m.GetTeamId(), "update")
	case *slackv1.PostEphemeral:
		return topology.SlackOut(org, m.GetTeamId(), "ephemeral")
	case *slackv1.RespondToURL:
		return topology.SlackOut(org, m.GetTeamId(), "respond")
	case *slackv1.UploadFile:
		return topology.SlackOut(org, m.GetTeamId(), "upload")
	}
	panic(fmt.Sprintf("no subject for %T", c))
}

// outcomes follows every DeliverySucceeded and DeliveryFailed in the
// INTEGRATION stream.
type outcomes struct {
	mu        sync.Mutex
	succeeded map[string][]*integrationv1.DeliverySucceeded // by command id
	failed    map[string][]*integrationv1.DeliveryFailed
	changed   chan struct{}
}

func watchOutcomes(t testing.TB, js jetstream.JetStream) *outcomes {
	t.Helper()
	o := &outcomes{succeeded: map[string][]*integrationv1.DeliverySucceeded{}, failed: map[string][]*integrationv1.DeliveryFailed{}, changed: make(chan struct{})}
	ctx := testkit.Context(t)
	cons, err := js.OrderedConsumer(ctx, topology.StreamIntegration, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"integration.v1.*.delivery.>"},
	})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		o.mu.Lock()
		defer o.mu.Unlock()
		if strings.HasSuffix(m.Subject(), ".succeeded") {
			ev := &integrationv1.DeliverySucceeded{}
			if proto.Unmarshal(m.Data(), ev) == nil {
				o.succeeded[ev.GetCommandId()] = append(o.succeeded[ev.GetCommandId()], ev)
			}
		} else {
			ev := &integrationv1.DeliveryFailed{}
			if proto.Unmarshal(m.Data(), ev) == nil {
				o.failed[ev.GetCommandId()] = append(o.failed[ev.GetCommandId()], ev)
			}
		}
		close(o.changed)
		o.changed = make(chan struct{})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return o
}

// count returns how many commands have an outcome.
func (o *outcomes) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := len(o.succeeded)
	for id := range o.failed {
		if _, ok := o.succeeded[id]; !ok {
			n++
		}
	}
	return n
}

// wait waits until every id has an outcome.
func (o *outcomes) wait(t testing.TB, timeout time.Duration, ids ...string) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		o.mu.Lock()
		missing := 0
		for _, id := range ids {
			if len(o.succeeded[id]) == 0 && len(o.failed[id]) == 0 {
				missing++
			}
		}
		ch := o.changed
		o.mu.Unlock()
		if missing == 0 {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%d of %d commands have no outcome after %s", missing, len(ids), timeout)
		}
	}
}

func (o *outcomes) get(id string) ([]*integrationv1.DeliverySucceeded, []*integrationv1.DeliveryFailed) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.succeeded[id]), slices.Clone(o.failed[id])
}

// mustFail returns the single DeliveryFailed of id and fails the test if
// the command succeeded.
func (o *outcomes) mustFail(t testing.TB, id string) *integrationv1.DeliveryFailed {
	t.Helper()
	s, f := o.get(id)
	if len(s) != 0 || len(f) != 1 {
		t.Fatalf("command %s: %d succeeded, %d failed outcomes; want one failure", id, len(s), len(f))
	}
	return f[0]
}

func (o *outcomes) mustSucceed(t testing.TB, id string) *integrationv1.DeliverySucceeded {
	t.Helper()
	s, f := o.get(id)
	if len(s) != 1 || len(f) != 0 {
		reason := ""
		if len(f) > 0 {
			reason = f[0].GetCode().String() + ": " + f[0].GetReason()
		}
		t.Fatalf("command %s: %d succeeded, %d failed outcomes; want one success %s", id, len(s), len(f), reason)
	}
	return s[0]
}

// fakeTeams is a TeamRegistryService serving bot tokens issued by the
// stand-in.
type fakeTeams struct {
	teamsv1.UnimplementedTeamRegistryServiceServer
	slack *slackstandin.Server
	addr  string

	mu      sync.Mutex
	tokens  map[string]string
	reports []string // "team:error"
	// refresh says whether ReportTokenFailure has a new token.
	refresh bool
	// scopes are the bot scopes of the tokens handed out; nil: the
	// stand-in's default.
	scopes []string
}

func newFakeTeams(t testing.TB, s *slackstandin.Server, pki *devpki.Dir) *fakeTeams {
	t.Helper()
	f := &fakeTeams{slack: s, tokens: map[string]string{}, refresh: true}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = lis.Addr().String()
	gs, err := rpc.NewServer(quietLogger(t), rpc.Security{Identity: testkit.Identity(t, pki, identity.Teams)})
	if err != nil {
		t.Fatal(err)
	}
	teamsv1.RegisterTeamRegistryServiceServer(gs, f)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return f
}

func (f *fakeTeams) GetBotToken(_ context.Context, req *teamsv1.GetBotTokenRequest) (*teamsv1.GetBotTokenResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Contains(teams, req.GetTeamId()) {
		return nil, status.Error(codes.NotFound, "no such team")
	}
	tok, ok := f.tokens[req.GetTeamId()]
	if !ok {
		tok = f.slack.IssueBotToken(req.GetTeamId(), f.scopes...)
		f.tokens[req.GetTeamId()] = tok
	}
	return &teamsv1.GetBotTokenResponse{BotToken: tok}, nil
}

func (f *fakeTeams) ReportTokenFailure(_ context.Context, req *teamsv1.ReportTokenFailureRequest) (*teamsv1.ReportTokenFailureResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reports = append(f.reports, req.GetTeamId()+":"+req.GetSlackError())
	delete(f.tokens, req.GetTeamId())
	if !f.refresh {
		return &teamsv1.ReportTokenFailureResponse{Refreshed: false, Status: teamsv1.TeamStatus_TEAM_STATUS_BROKEN}, nil
	}
	return &teamsv1.ReportTokenFailureResponse{Refreshed: true, Status: teamsv1.TeamStatus_TEAM_STATUS_ACTIVE}, nil
}

func (f *fakeTeams) reported() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reports)
}

// shim sits in front of the stand-in. It records when each chat.postMessage
// reached Slack and what Slack answered (to check that every 429's
// Retry-After was honoured) and counts the posts Slack accepted. It can
// also hold back the answer to a post Slack already accepted, the window in
// which a crash leaves a post unrecorded. Everything else, history and
// permalinks included, is the stand-in's own.
type shim struct {
	next http.Handler
	// delay holds back chat.postMessage answers (nanoseconds).
	delay atomic.Int64

	mu       sync.Mutex
	requests map[string][]postRequest // by channel
	posts    map[string]int           // accepted, by channel
}

type postRequest struct {
	at         time.Time
	status     int
	retryAfter time.Duration
}

func newShim(next http.Handler) *shim {
	return &shim{next: next, requests: map[string][]postRequest{}, posts: map[string]int{}}
}

func (s *shim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/api/chat.postMessage" {
		s.post(w, r)
		return
	}
	s.next.ServeHTTP(w, r)
}

func (s *shim) post(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	// Delivery posts JSON; a form is read too, for any other caller.
	var args struct {
		Channel string `json:"channel"`
	}
	if json.Unmarshal(body, &args) != nil {
		form, _ := url.ParseQuery(string(body))
		args.Channel = form.Get("channel")
	}
	rec := httptest.NewRecorder()
	s.next.ServeHTTP(rec, r)
	var answer struct {
		OK      bool   `json:"ok"`
		Channel string `json:"channel"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &answer)
	pr := postRequest{at: at, status: rec.Code}
	if ra := rec.Header().Get("Retry-After"); ra != "" {
		var secs int
		_, _ = fmt.Sscan(ra, &secs)
		pr.retryAfter = time.Duration(secs) * time.Second
	}
	s.mu.Lock()
	s.requests[args.Channel] = append(s.requests[args.Channel], pr)
	if answer.OK {
		s.posts[answer.Channel]++
	}
	s.mu.Unlock()
	if d := time.Duration(s.delay.Load()); d > 0 {
		time.Sleep(d)
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// checkRetryAfterHonoured fails t if a post to a channel came sooner after a
// 429 than its Retry-After allowed; it returns how many 429s there were.
func (s *shim) checkRetryAfterHonoured(t testing.TB) int {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for ch, reqs := range s.requests {
		for i, r := range reqs {
			if r.status != http.StatusTooManyRequests {
				continue
			}
			n++
			if i+1 < len(reqs) {
				if gap := reqs[i+1].at.Sub(r.at); gap < r.retryAfter-5*time.Millisecond {
					t.Errorf("channel %s: a post came %s after a 429 with Retry-After %s", ch, gap, r.retryAfter)
				}
			}
		}
	}
	return n
}

// textsIn returns the texts of the messages recorded in channel, in order.
func (e *env) textsIn(channel string) []string {
	var out []string
	for _, m := range e.slack.Messages(slackstandin.MessageFilter{Channel: channel, Kind: slackstandin.KindMessage}) {
		out = append(out, m.Text)
	}
	return out
}

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

// accepted counts the posts Slack accepted.
func (s *shim) accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, p := range s.posts {
		n += p
	}
	return n
}

func deliveryPolicy(s string) deliver.Policy { return deliver.Policy(s) }

// domains are the seed's workspace domains, for permalinks.
var domains = map[string]string{acme: "acme-corp", globex: "globex", initech: "initech", umbrella: "umbrella-corp"}

// checkPermalink fails t unless s carries the permalink Slack gives its
// message: https://<domain>.slack.com/archives/<channel>/p<ts without dot>.
func checkPermalink(t testing.TB, s *integrationv1.DeliverySucceeded) {
	t.Helper()
	want := "https://" + domains[s.GetTeamId()] + ".slack.com/archives/" + s.GetChannelId() + "/p" + strings.Replace(s.GetTs(), ".", "", 1)
	if s.GetPermalink() != want {
		t.Errorf("command %s: permalink %q, want %q", s.GetCommandId(), s.GetPermalink(), want)
	}
}
