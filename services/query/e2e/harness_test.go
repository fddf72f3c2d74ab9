package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/card"
	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/libs/identity"
	"github.com/crmslack/crmslack/libs/service"
	"github.com/crmslack/crmslack/libs/slackstandin"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/testkit/harness"
	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	integrationv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/integration/v1"
	queryv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/query/v1"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"

	"github.com/crmslack/crmslack/services/delivery"
	"github.com/crmslack/crmslack/services/gateway"
	"github.com/crmslack/crmslack/services/query"
	"github.com/crmslack/crmslack/services/query/internal/seedset"
	"github.com/crmslack/crmslack/services/teams"
)

// The stand-in's default seed: Acme (Alice, whom the CRM knows, and Bob,
// whom it does not; #sales) is added to the seed org; Globex (Hank, #deals)
// is connected to no CRM.
const (
	org         = seedset.Org
	acme        = "T0ACME0001"
	globex      = "T0GLBX0001"
	alice       = "U0ACME0ALC"
	aliceEmail  = "alice@acme.example"
	bob         = "U0ACME0BOB"
	acmeSales   = "C0ACMESALE"
	hank        = "U0GLBX0HNK"
	globexDeals = "C0GLBXDEAL"
	crmBaseURL  = "https://crm.example"

	signingSecret  = "standin-signing-secret"
	shareButtonKey = "e2e-share-button-key-0123456789abcdef"
	clientID       = "1234567890.1234567890"
	clientSecret   = "standin-client-secret"
)

// stack is every service a /zcrm command crosses, in-process, on embedded
// NATS and FerretDB, with the Slack stand-in playing Slack: the team
// registry, the query service, the delivery service (the only Slack
// egress, for late answers through the response_url) and the gateway,
// which Slack's signed requests enter.
type stack struct {
	standin  *slackstandin.Server
	sender   *slackstandin.Sender
	js       jetstream.JetStream
	crm      *bus.Bus // the tests' own connection, publishing as the CRM
	natsURL  string
	commands string // the gateway's slash-command endpoint
	query    queryv1.QueryServiceClient
	registry teamsv1.TeamRegistryServiceClient
	services *testkit.Services
	// queryProc is the query service's process, when it runs as one.
	queryProc *queryProcess
}

// stop stops one service of the stack (teams, query, delivery, gateway),
// as a crash or an outage would.
func (s *stack) stop(t testing.TB, name string) {
	t.Helper()
	s.services.Stop(name)
}

// stackOptions change how the stack is wired.
type stackOptions struct {
	// queryDelay, when set, puts a link in front of the query service's
	// gRPC port that holds every byte the service sends back for that
	// long: to the gateway, a query service that answers late. The
	// service's consumers, which do not use that port, run as ever.
	queryDelay time.Duration
	// answerBudget is the gateway's GATEWAY_ANSWER_BUDGET; 0 is its
	// default (1.5 s).
	answerBudget time.Duration
	// quiet drops the services' logs (benchmarks: the log would hold every
	// command).
	quiet bool
	// queryBinary, when set, runs the query service as a process of its
	// own from that binary (see queryProcess), in stack.queryProc.
	queryBinary string
}

func startStack(t testing.TB, o stackOptions) *stack {
	t.Helper()
	logger := func(svc string) *slog.Logger {
		if o.quiet {
			return slog.New(slog.DiscardHandler)
		}
		return testkit.Logger(t).With("svc", svc)
	}
	// The org's CRM user exists on the server only if its key is made
	// first (crmctl import logs in as crm-<org>).
	pki := testkit.PKI(t, org)
	ns := testkit.NATS(t)
	ms := testkit.Mongo(t)
	std := harness.Standin(t, slackstandin.Config{
		App:        slackstandin.AppConfig{SigningSecret: signingSecret, ClientID: clientID, ClientSecret: clientSecret},
		RateLimits: slackstandin.RateLimits{Disabled: true},
	})
	// Like Slack, keep connections to the app alive between requests.
	client := &http.Client{
		Transport:     &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.Cleanup(client.CloseIdleConnections)
	s := &stack{standin: std, sender: std.NewSender(client), natsURL: ns.ClientURL()}
	s.js = testkit.JetStream(t, testkit.NATSConn(t, ns))
	s.crm = harness.Bus(t, ns.ClientURL(), "e2e-crm", logger("crm"))

	r := testkit.NewServices(t)
	s.services = r
	apiURL := std.URL() + "/api/"
	ticketKey := testkit.RandomKey(t)
	gwLis := testkit.Listener(t)
	gwAddr := gwLis.Addr().String()
	gwURL := "http://" + gwAddr
	s.commands = gwURL + "/slack/commands"

	ta := testkit.Start(r, "teams", func(ctx context.Context, ready func(teams.Addrs)) error {
		return teams.Run(ctx, teams.Config{
			Connections:      harness.Connections(t, pki, identity.Teams, ns.ClientURL(), ms.URI()),
			TokenKeys:        "k1:" + testkit.RandomKey(t),
			InstallTicketKey: ticketKey, GatewayPublicURL: gwURL, SlackAPIURL: apiURL,
			SlackClientID: clientID, SlackClientSecret: clientSecret,
			RefreshInterval: time.Hour, SweepInterval: time.Second, MembershipTTL: time.Minute, DirectoryTTL: time.Minute,
			Ready: ready,
		}, logger("teams"), prometheus.NewRegistry())
	})
	tc := testkit.AllowedConn(t, pki, ta.GRPC)
	s.registry = teamsv1.NewTeamRegistryServiceClient(tc)
	// The org's admin added Acme, with a bot token the stand-in honours.
	// Globex stays unconnected.
	_, err := teamsv1.NewTeamRegistryServiceClient(tc).CompleteInstall(testkit.Context(t), &teamsv1.CompleteInstallRequest{
		OrgId: org, InstalledBy: &commonv1.CrmUserRef{Id: "crm-admin", Name: "Ada Admin"},
		Team:     &integrationv1.Team{TeamId: acme, Name: "Acme Corp", Domain: "acme-corp", BotUserId: "U0ACMEBOT1", Scopes: slackstandin.DefaultBotScopes()},
		BotToken: std.IssueBotToken(acme),
	})
	if err != nil {
		t.Fatalf("installing %s: %v", acme, err)
	}

	var qa query.Addrs
	if o.queryBinary != "" {
		s.queryProc = startQueryProcess(t, o.queryBinary, ns.ClientURL(), ta.GRPC)
		qa = s.queryProc.addrs
	} else {
		qa = testkit.Start(r, "query", func(ctx context.Context, ready func(query.Addrs)) error {
			return query.Run(ctx, query.Config{
				Connections: harness.Connections(t, pki, identity.Query, ns.ClientURL(), ""),
				TeamsAddr:   ta.GRPC, CRMBaseURL: crmBaseURL, SlashCommands: []string{"/zcrm"}, SlackUserTTL: 10 * time.Minute,
				ShareButtonKey: shareButtonKey,
				Ready:          ready,
			}, logger("query"), prometheus.NewRegistry())
		})
	}
	s.query = queryv1.NewQueryServiceClient(testkit.AllowedConn(t, pki, qa.GRPC))

	// Delivery as configured from its environment, so settings it gains
	// keep their defaults here; only what a test needs is set.
	df := testkit.TrustFiles(t, pki, identity.Delivery)
	env := envconfig.FromMap(map[string]string{
		"TLS_CERT_FILE": df.TLSCertFile, "TLS_KEY_FILE": df.TLSKeyFile, "TLS_CA_FILE": df.TLSCAFile, "CRM_KEYS_FILE": df.CRMKeysFile,
		"NATS_USER": df.NATSUser, "NATS_PASSWORD": df.NATSPassword,
		"NATS_URL": ns.ClientURL(), "MONGODB_URI": ms.URI(), "DELIVERY_MONGODB_DATABASE": "delivery",
		"DELIVERY_GRPC_ADDR": "127.0.0.1:0", "DELIVERY_OPS_ADDR": "127.0.0.1:0", "TEAMS_ADDR": ta.GRPC, "SLACK_API_URL": apiURL,
		"DELIVERY_CHANNEL_RATE": "100", "DELIVERY_CHANNEL_BURST": "10", "DELIVERY_CONCURRENCY": "8",
		"DELIVERY_MAX_ATTEMPTS": "4", "DELIVERY_BACKOFF_BASE": "20ms", "DELIVERY_BACKOFF_MAX": "200ms",
		"DELIVERY_SLACK_TIMEOUT": "5s", "DELIVERY_ACK_WAIT": "5s", "DELIVERY_AUDIT_FLUSH": "20ms",
	})
	dc := delivery.ConfigFromEnv(env)
	if err := env.Err(); err != nil {
		t.Fatalf("delivery configuration: %v", err)
	}
	testkit.Start(r, "delivery", func(ctx context.Context, ready func(delivery.Addrs)) error {
		dc.Ready = ready
		return delivery.Run(ctx, dc, logger("delivery"), prometheus.NewRegistry())
	})

	queryAddr := qa.GRPC
	if o.queryDelay > 0 {
		queryAddr = slowLink(t, qa.GRPC, o.queryDelay)
	}
	gc := harness.Connections(t, pki, identity.Gateway, ns.ClientURL(), "")
	gc.Listeners = service.Listeners{gateway.ListenerHTTP: gwLis}
	ga := testkit.Start(r, "gateway", func(ctx context.Context, ready func(gateway.Addrs)) error {
		return gateway.Run(ctx, gateway.Config{
			Connections: gc,
			Addr:        gwAddr, PublicURL: gwURL,
			StateKey: testkit.RandomKey(t), InstallTicketKey: ticketKey, SigningSecret: signingSecret,
			ClientID: clientID, ClientSecret: clientSecret,
			SlackAPIURL: apiURL, SlackAuthorizeURL: std.URL() + "/oauth/v2/authorize",
			TeamsAddr: ta.GRPC,
			MaxBody:   1 << 20, AckBudget: 2500 * time.Millisecond,
			QueryAddr: queryAddr, QueryCommands: "/zcrm", AnswerBudget: o.answerBudget,
			Ready: ready,
		}, logger("gateway"), prometheus.NewRegistry())
	})
	// Ready once its team directory has read the registry's org access,
	// and until then a command could be told "not connected" wrongly.
	testkit.WaitReady(t, ga.Ops, testkit.DefaultTimeout)
	return s
}

func envelope() *commonv1.Envelope {
	return harness.Envelope(org, "")
}

// crmUser is the CRM telling that Alice is one of its users.
func crmUser() bus.Published {
	return bus.Published{Subject: topology.CrmUser(org, "upserted"), Event: &crmv1.CrmUserUpserted{Envelope: envelope(),
		User: &crmv1.CrmUser{Id: "crm-alice", Email: aliceEmail, FullName: "Alice Johnson", Active: true, Version: 1}}}
}

func upsert(rec *crmv1.Record, schema *crmv1.ModuleSchema) bus.Published {
	return bus.Published{Subject: topology.RecordUpserted(org, rec.GetModule()), Event: &crmv1.RecordUpserted{Envelope: envelope(), Record: rec, Schema: schema}}
}

// seedCRM publishes what the CRM would: Alice as a CRM user and every seed
// record, and waits until the query service can search them all.
func (s *stack) seedCRM(t testing.TB) {
	t.Helper()
	schemas := seedset.Schemas()
	items := []bus.Published{crmUser()}
	want := map[string]int64{}
	for module, recs := range seedset.Records() {
		for _, r := range recs {
			items = append(items, upsert(r, schemas[module]))
		}
		want[module] = int64(len(recs))
	}
	if err := s.crm.PublishBatch(testkit.Context(t), items); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, testkit.DefaultTimeout, func() bool {
		for module, n := range want {
			if s.total(t, module) != n {
				return false
			}
		}
		return true
	}, "the query service holds every seed record")
}

// total asks the query service directly, as Alice, how many records the
// module holds (0 while it cannot say).
func (s *stack) total(t testing.TB, module string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(testkit.Context(t), 5*time.Second)
	defer cancel()
	resp, err := s.query.RunSlashCommand(ctx, &queryv1.RunSlashCommandRequest{OrgId: org, TeamId: acme, SlackUserId: alice, Text: module})
	if err != nil {
		return 0
	}
	return resp.GetTotal()
}

// slash sends a signed /zcrm command as Slack would and returns the
// gateway's answer.
func (s *stack) slash(t testing.TB, team, channel, user, text string, opts ...slackstandin.SendOption) *slackstandin.Delivery {
	t.Helper()
	d, err := s.sender.SlashCommand(testkit.Context(t), s.commands, slackstandin.SlashCommand{
		TeamID: team, ChannelID: channel, UserID: user, Command: "/zcrm", Text: text,
	}, opts...)
	if err != nil {
		t.Fatalf("/zcrm %s: %v", text, err)
	}
	return d
}

// answer is a slash command's answer as Slack reads it, whether from the
// HTTP response or from a response_url post.
type answer struct {
	ResponseType string          `json:"response_type"`
	Text         string          `json:"text"`
	Blocks       json.RawMessage `json:"blocks"`

	// Read from the blocks:
	ids      []string // the records shown, in order, from the Share buttons
	total    int      // how many matched in all, from the "3 of 12 leads" header; -1 without one
	otherOrg bool     // a Share button names another org
	shown    string   // every text of the blocks, as Slack shows it (mrkdwn escapes undone), one a line
}

// heading is the results header of libs/card's RenderList.
var heading = regexp.MustCompile(`^(\d+) of (\d+) \S`)

// parseAnswer reads Slack's slash-command response body.
func parseAnswer(body []byte) (answer, error) {
	var a answer
	if err := json.Unmarshal(body, &a); err != nil {
		return a, fmt.Errorf("answer is not JSON: %w: %.200s", err, body)
	}
	return a, a.readBlocks()
}

func (a *answer) readBlocks() error {
	a.total = -1
	if len(a.Blocks) == 0 {
		return nil
	}
	type text struct {
		Text string `json:"text"`
	}
	var blocks []struct {
		Type     string `json:"type"`
		Text     text   `json:"text"`
		Fields   []text `json:"fields"`
		Elements []struct {
			// A string for a context block's text, an object for a
			// button's label.
			Text     json.RawMessage `json:"text"`
			ActionID string          `json:"action_id"`
			Value    string          `json:"value"`
		} `json:"elements"`
	}
	if err := json.Unmarshal(a.Blocks, &blocks); err != nil {
		return fmt.Errorf("blocks are not a Block Kit array: %w", err)
	}
	var shown strings.Builder
	for _, b := range blocks {
		shown.WriteString(html.UnescapeString(b.Text.Text) + "\n")
		for _, f := range b.Fields {
			shown.WriteString(html.UnescapeString(f.Text) + "\n")
		}
		for _, e := range b.Elements {
			var label text
			if json.Unmarshal(e.Text, &label) != nil {
				_ = json.Unmarshal(e.Text, &label.Text)
			}
			shown.WriteString(html.UnescapeString(label.Text) + "\n")
		}
		if m := heading.FindStringSubmatch(b.Text.Text); b.Type == "header" && m != nil {
			a.total, _ = strconv.Atoi(m[2])
		}
		for _, e := range b.Elements {
			if e.ActionID != card.ShareActionID {
				continue
			}
			ref, err := buttons.Read(e.Value)
			if err != nil {
				return fmt.Errorf("share button value %q: %w", e.Value, err)
			}
			a.otherOrg = a.otherOrg || ref.Org != org
			a.ids = append(a.ids, ref.ID)
		}
	}
	a.shown = shown.String()
	return nil
}

// consumerIdle reports whether a durable consumer has handled everything
// its stream holds.
func (s *stack) consumerIdle(t testing.TB, stream, durable string) bool {
	t.Helper()
	c, err := s.js.Consumer(testkit.Context(t), stream, durable)
	if err != nil {
		return false
	}
	info, err := c.Info(testkit.Context(t))
	return err == nil && info.NumPending == 0 && info.NumAckPending == 0
}

// streamSettled reports whether every consumer of a stream has handled
// everything it holds, whatever the consumers are called.
func (s *stack) streamSettled(t testing.TB, stream string) bool {
	t.Helper()
	st, err := s.js.Stream(testkit.Context(t), stream)
	if err != nil {
		return false
	}
	l := st.ListConsumers(testkit.Context(t))
	n := 0
	for info := range l.Info() {
		n++
		if info.NumPending != 0 || info.NumAckPending != 0 {
			return false
		}
	}
	return l.Err() == nil && n > 0
}

// countOut counts the messages the SLACK_OUT stream holds: what the
// services asked the egress to send.
func (s *stack) countOut(t testing.TB) uint64 {
	t.Helper()
	return harness.StreamMsgs(t, s.js, topology.StreamSlackOut)
}

// slowLink listens on loopback and forwards every connection to target,
// holding each chunk target sends back for delay (requests pass at once).
// It returns its address; connections are closed at cleanup.
func slowLink(t testing.TB, target string, delay time.Duration) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() {
		for {
			in, err := lis.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				_ = in.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, in, out)
			mu.Unlock()
			wg.Go(func() {
				_, _ = io.Copy(out, in)
				_ = out.Close()
			})
			wg.Go(func() { delayedCopy(in, out, delay) })
		}
	})
	t.Cleanup(func() {
		_ = lis.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return lis.Addr().String()
}

// delayedCopy copies src to dst, each chunk delay after it was read, in
// order; then closes both.
func delayedCopy(dst, src net.Conn, delay time.Duration) {
	type chunk struct {
		b   []byte
		due time.Time
	}
	chunks := make(chan chunk, 1024)
	go func() {
		defer close(chunks)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				chunks <- chunk{buf[:n], time.Now().Add(delay)}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range chunks {
		time.Sleep(time.Until(c.due))
		if _, err := dst.Write(c.b); err != nil {
			break
		}
	}
	_ = dst.Close()
	_ = src.Close()
	for range chunks { // let the reader finish
	}
}

// buttons reads the Share buttons the query service signs.
var buttons = func() *card.Buttons {
	b, err := card.NewButtons(nil, []byte(shareButtonKey))
	if err != nil {
		panic(err)
	}
	return b
}()
