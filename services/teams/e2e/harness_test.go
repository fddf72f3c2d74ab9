package e2e

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmslack/crmslack/libs/devpki"
	"github.com/crmslack/crmslack/libs/logging"
	"github.com/crmslack/crmslack/libs/rpc"
	"github.com/crmslack/crmslack/libs/service"
	"github.com/crmslack/crmslack/libs/slackstandin"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/testkit/harness"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"

	"github.com/crmslack/crmslack/services/gateway"
	"github.com/crmslack/crmslack/services/teams"
)

// stack is the registry and the gateway, running in-process against
// embedded NATS and FerretDB, with the Slack stand-in playing Slack.
type stack struct {
	t          *testing.T
	standin    *slackstandin.Server
	sender     *slackstandin.Sender
	js         jetstream.JetStream
	mongoURI   string
	database   string
	tokenKeys  string
	gateway    string // http://host:port
	gatewayOps string
	registry   teamsv1.TeamRegistryServiceClient
	pki        *devpki.Dir
	teamsAddr  string
	logs       *logTap
}

// logTap keeps every log line both services wrote, as JSON, to check that
// no secret ever reaches a log.
type logTap struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logTap) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logTap) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// logger logs to the test (shown on failure) and to the tap, at debug
// level, through the same redacting logger the services use in production.
func (s *stack) logger(t *testing.T, svc string) *slog.Logger {
	tapped := logging.New(s.logs, logging.Config{Level: slog.LevelDebug, JSON: true})
	return slog.New(teeHandler{testkit.Logger(t).Handler(), tapped.Handler()}).With("svc", svc)
}

type teeHandler struct{ a, b slog.Handler }

func (h teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.a.Enabled(ctx, l) || h.b.Enabled(ctx, l)
}

func (h teeHandler) Handle(ctx context.Context, r slog.Record) error {
	_ = h.a.Handle(ctx, r.Clone())
	return h.b.Handle(ctx, r)
}

func (h teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return teeHandler{h.a.WithAttrs(as), h.b.WithAttrs(as)}
}

func (h teeHandler) WithGroup(n string) slog.Handler {
	return teeHandler{h.a.WithGroup(n), h.b.WithGroup(n)}
}

const (
	signingSecret = "standin-signing-secret"
	clientID      = "1234567890.1234567890"
	clientSecret  = "standin-client-secret"
)

type stackOptions struct {
	tokenRotation  bool
	tokenExpiresIn time.Duration
	refreshEvery   time.Duration
}

func startStack(t *testing.T, o stackOptions) *stack {
	t.Helper()
	ns := testkit.NATS(t)
	ms := testkit.Mongo(t)
	std, err := slackstandin.New(slackstandin.Config{App: slackstandin.AppConfig{
		SigningSecret: signingSecret, ClientID: clientID, ClientSecret: clientSecret,
		TokenRotation: o.tokenRotation, TokenExpiresIn: o.tokenExpiresIn,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := std.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(std.Close)

	s := &stack{t: t, standin: std, sender: std.NewSender(nil), mongoURI: ms.URI(), database: "teams_e2e",
		tokenKeys: "k1:" + testkit.RandomKey(t), logs: &logTap{}, pki: testkit.PKI(t)}
	nc := testkit.NATSConn(t, ns)
	s.js = testkit.JetStream(t, nc)
	ticketKey := testkit.RandomKey(t)
	gwLis := testkit.Listener(t)
	s.gateway = "http://" + gwLis.Addr().String()
	refresh := o.refreshEvery
	if refresh == 0 {
		refresh = time.Hour
	}

	tc := harness.Connections(t, s.pki, rpc.Teams, ns.ClientURL(), ms.URI())
	tc.Database = s.database
	gc := harness.Connections(t, s.pki, rpc.Gateway, ns.ClientURL(), "")
	gc.Listeners = service.Listeners{gateway.ListenerHTTP: gwLis}
	svcs := testkit.NewServices(t)
	ta := testkit.Start(svcs, "teams", func(ctx context.Context, ready func(teams.Addrs)) error {
		return teams.Run(ctx, teams.Config{
			Connections: tc, TokenKeys: s.tokenKeys,
			InstallTicketKey: ticketKey, GatewayPublicURL: s.gateway, SlackAPIURL: std.URL() + "/api/",
			SlackClientID: clientID, SlackClientSecret: clientSecret,
			RefreshInterval: refresh, SweepInterval: time.Second, MembershipTTL: time.Minute,
			Ready: ready,
		}, s.logger(t, "teams"), prometheus.NewRegistry())
	})
	ga := testkit.Start(svcs, "gateway", func(ctx context.Context, ready func(gateway.Addrs)) error {
		return gateway.Run(ctx, gateway.Config{
			Connections: gc,
			Addr:        "127.0.0.1:0", PublicURL: s.gateway,
			StateKey: testkit.RandomKey(t), InstallTicketKey: ticketKey, SigningSecret: signingSecret,
			ClientID: clientID, ClientSecret: clientSecret,
			SlackAPIURL: std.URL() + "/api/", SlackAuthorizeURL: std.URL() + "/oauth/v2/authorize",
			TeamsAddr: ta.GRPC, MaxBody: 1 << 20, AckBudget: 2500 * time.Millisecond,
			Ready: ready,
		}, s.logger(t, "gateway"), prometheus.NewRegistry())
	})
	s.gatewayOps = "http://" + ga.Ops
	// Each call goes as a caller the authorization table allows: a service,
	// or the CRM with the credential it signs for the acting user.
	s.teamsAddr = ta.GRPC
	s.registry = teamsv1.NewTeamRegistryServiceClient(testkit.AllowedConn(t, s.pki, ta.GRPC))

	// The gateway is ready once it has read the (possibly empty) org
	// access bucket.
	testkit.WaitReady(t, ga.Ops, 10*time.Second)
	return s
}

var (
	admin    = &teamsv1.Caller{User: &commonv1.CrmUserRef{Id: "crm-admin-1", Name: "Ada Admin"}, IsAdmin: true}
	nonAdmin = &teamsv1.Caller{User: &commonv1.CrmUserRef{Id: "crm-user-2", Name: "Sam Sales"}}
)

// browser is a web browser: its own cookies, following redirects, and
// remembering every URL it was sent to.
type browser struct {
	client  *http.Client
	visited []*url.URL
	// stopAt, if set, stops following redirects at the first URL with this
	// prefix (the response is the redirect).
	stopAt string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{}
	b.client = &http.Client{Jar: jar, Timeout: 20 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		b.visited = append(b.visited, req.URL)
		if b.stopAt != "" && strings.HasPrefix(req.URL.String(), b.stopAt) {
			return http.ErrUseLastResponse
		}
		if len(via) > 10 {
			return errors.New("too many redirects")
		}
		return nil
	}}
	return b
}

type page struct {
	status int
	body   string
	header http.Header
}

func (b *browser) get(t *testing.T, u string) page {
	t.Helper()
	resp, err := b.client.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return page{status: resp.StatusCode, body: sb.String(), header: resp.Header}
}

// lastVisit returns the last URL visited whose path is path.
func (b *browser) lastVisit(path string) *url.URL {
	for i := len(b.visited) - 1; i >= 0; i-- {
		if b.visited[i].Path == path {
			return b.visited[i]
		}
	}
	return nil
}

func (s *stack) beginInstall(t *testing.T, org, teamHint string) string {
	t.Helper()
	resp, err := s.registry.BeginInstall(testkit.Context(t), &teamsv1.BeginInstallRequest{OrgId: org, Caller: admin, TeamHint: teamHint})
	if err != nil {
		t.Fatalf("BeginInstall: %v", err)
	}
	return resp.GetInstallUrl()
}

// countOn counts the messages a stream holds on subject.
func (s *stack) countOn(t *testing.T, stream, subject string) uint64 {
	t.Helper()
	st, err := s.js.Stream(testkit.Context(t), stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := st.Info(testkit.Context(t), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatalf("stream %s info: %v", stream, err)
	}
	return info.State.Subjects[subject]
}

// consumerIdle reports whether a durable consumer has handled everything.
func (s *stack) consumerIdle(t *testing.T, stream, durable string) bool {
	t.Helper()
	c, err := s.js.Consumer(testkit.Context(t), stream, durable)
	if err != nil {
		return false
	}
	info, err := c.Info(testkit.Context(t))
	return err == nil && info.NumPending == 0 && info.NumAckPending == 0
}
