package e2e

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/devpki"
	"github.com/crmslack/crmslack/libs/rpc"
	"github.com/crmslack/crmslack/libs/service"
	"github.com/crmslack/crmslack/libs/slackstandin"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/testkit/harness"
	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	queryv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/query/v1"
	sharingv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/sharing/v1"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"

	"github.com/crmslack/crmslack/services/delivery"
	"github.com/crmslack/crmslack/services/gateway"
	"github.com/crmslack/crmslack/services/query"
	"github.com/crmslack/crmslack/services/sharing"
	"github.com/crmslack/crmslack/services/teams/teamstest"
)

// The stand-in's default seed: Acme (Alice, Bob; #general, #sales and
// #deal-desk with the bot in them, #random without) and Globex (#deals).
const (
	org         = "acme-crm"
	acme        = "T0ACME0001"
	globex      = "T0GLBX0001"
	alice       = "U0ACME0ALC"
	aliceEmail  = "alice@acme.example"
	bob         = "U0ACME0BOB"
	acmeGeneral = "C0ACMEGNRL"
	acmeSales   = "C0ACMESALE"
	acmeDesk    = "G0ACMEDEAL"
	globexDeals = "C0GLBXDEAL"
	crmBaseURL  = "https://crm.example.com/crm/acme"

	signingSecret = "standin-signing-secret"
	clientID      = "1234567890.1234567890"
	clientSecret  = "standin-client-secret"
)

// stack is every service sharing works with, in-process, on embedded
// NATS and FerretDB, with the Slack stand-in playing Slack: the team
// registry, the gateway (for button clicks), the query service (records
// and /zcrm results), the delivery service (the only Slack egress) and
// sharing itself.
type stack struct {
	pki      *devpki.Dir
	standin  *slackstandin.Server
	sender   *slackstandin.Sender
	js       jetstream.JetStream
	bus      *bus.Bus
	gateway  string // http://host:port
	registry teamsv1.TeamRegistryServiceClient
	query    queryv1.QueryServiceClient
	sharing  sharingv1.SharingServiceClient
}

// quiet logs warnings and errors of the services to the test.
func quiet(t *testing.T, svc string) *slog.Logger {
	return testkit.Logger(t).With("svc", svc)
}

func startStack(t *testing.T) *stack {
	t.Helper()
	ns := testkit.NATS(t)
	ms := testkit.Mongo(t)
	std := harness.Standin(t, slackstandin.Config{
		App:        slackstandin.AppConfig{SigningSecret: signingSecret, ClientID: clientID, ClientSecret: clientSecret},
		RateLimits: slackstandin.RateLimits{Disabled: true},
	})
	s := &stack{pki: testkit.PKI(t), standin: std, sender: std.NewSender(nil)}
	s.js = testkit.JetStream(t, testkit.NATSConn(t, ns))
	s.bus = harness.Bus(t, ns.ClientURL(), "e2e-crm", quiet(t, "crm"))

	r := testkit.NewServices(t)
	apiURL := std.URL() + "/api/"
	ticketKey := testkit.RandomKey(t)
	gwLis := testkit.Listener(t)
	gwAddr := gwLis.Addr().String()
	s.gateway = "http://" + gwAddr

	reg := teamstest.Start(t, r, teamstest.Options{
		PKI: s.pki, NATSURL: ns.ClientURL(), MongoURI: ms.URI(), Standin: std, ClientID: clientID, ClientSecret: clientSecret,
		GatewayPublicURL: s.gateway, InstallTicketKey: ticketKey, Log: quiet(t, "teams"),
	})
	ta := reg.Addrs
	s.registry = reg.Client
	// The admin added both workspaces to the org.
	reg.Install(t, org, teamstest.Workspace{ID: acme, Name: "Acme Corp", Domain: "acme-corp", Bot: "U0ACMEBOT1"},
		teamstest.Workspace{ID: globex, Name: "Globex", Domain: "globex", Bot: "U0GLBXBOT1"})

	qa := testkit.Start(r, "query", func(ctx context.Context, ready func(query.Addrs)) error {
		return query.Run(ctx, query.Config{
			Connections: harness.Connections(t, s.pki, rpc.Query, ns.ClientURL(), ""),
			TeamsAddr:   ta.GRPC, CRMBaseURL: crmBaseURL, SlashCommands: []string{"/zcrm"}, SlackUserTTL: time.Minute,
			ShareButtonKey: shareButtonKey,
			Ready:          ready,
		}, quiet(t, "query"), prometheus.NewRegistry())
	})
	s.query = queryv1.NewQueryServiceClient(testkit.AllowedConn(t, s.pki, qa.GRPC))

	testkit.Start(r, "delivery", func(ctx context.Context, ready func(delivery.Addrs)) error {
		return delivery.Run(ctx, delivery.Config{
			Connections: harness.Connections(t, s.pki, rpc.Delivery, ns.ClientURL(), ms.URI()),
			TeamsAddr:   ta.GRPC, SlackAPIURL: apiURL,
			ResponseURLHosts: []string{"hooks.slack.com"}, ChannelRate: 100, ChannelBurst: 10, Concurrency: 8,
			MaxInFlight: 1000, MaxAttempts: 4, BackoffBase: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
			SlackTimeout: 5 * time.Second, AckWait: 5 * time.Second, MaxDeliver: 20, LedgerTTL: 7 * 24 * time.Hour,
			Unconfirmed: "fail", Permalinks: true, AuditBatch: 100, AuditFlush: 20 * time.Millisecond,
			Ready: ready,
		}, quiet(t, "delivery"), prometheus.NewRegistry())
	})

	gc := harness.Connections(t, s.pki, rpc.Gateway, ns.ClientURL(), "")
	gc.Listeners = service.Listeners{gateway.ListenerHTTP: gwLis}
	testkit.Start(r, "gateway", func(ctx context.Context, ready func(gateway.Addrs)) error {
		return gateway.Run(ctx, gateway.Config{
			Connections: gc,
			Addr:        gwAddr, PublicURL: s.gateway,
			StateKey: testkit.RandomKey(t), InstallTicketKey: ticketKey, SigningSecret: signingSecret,
			ClientID: clientID, ClientSecret: clientSecret,
			SlackAPIURL: apiURL, SlackAuthorizeURL: std.URL() + "/oauth/v2/authorize",
			TeamsAddr: ta.GRPC,
			MaxBody:   1 << 20, AckBudget: 2500 * time.Millisecond,
			Ready: ready,
		}, quiet(t, "gateway"), prometheus.NewRegistry())
	})

	sa := testkit.Start(r, "sharing", func(ctx context.Context, ready func(sharing.Addrs)) error {
		return sharing.Run(ctx, sharing.Config{
			Connections: harness.Connections(t, s.pki, rpc.Sharing, ns.ClientURL(), ms.URI()),
			TeamsAddr:   ta.GRPC, QueryAddr: qa.GRPC,
			CRMBaseURL: crmBaseURL, RequestMaxAge: time.Hour, ShareButtonKey: shareButtonKey,
			Ready: ready,
		}, quiet(t, "sharing"), prometheus.NewRegistry())
	})
	s.sharing = sharingv1.NewSharingServiceClient(testkit.AllowedConn(t, s.pki, sa.GRPC))
	// Sharing is ready to decide once it has read the org's access.
	testkit.Eventually(t, 20*time.Second, func() bool {
		_, err := s.sharing.ListTargets(testkit.Context(t), &sharingv1.ListTargetsRequest{OrgId: org, SharerEmail: aliceEmail})
		return err == nil
	}, "sharing sees the org's teams")
	return s
}

func dealSchema() *crmv1.ModuleSchema {
	return &crmv1.ModuleSchema{
		Module: "Deals", SingularLabel: "Deal", PluralLabel: "Deals", DisplayField: "Deal_Name", HasCardView: true,
		Fields: []*crmv1.FieldMeta{
			{ApiName: "Deal_Name", Label: "Deal Name", Type: crmv1.FieldType_FIELD_TYPE_SINGLE_LINE},
			{ApiName: "Amount", Label: "Amount", Type: crmv1.FieldType_FIELD_TYPE_CURRENCY, CurrencyCode: "EUR"},
			{ApiName: "Stage", Label: "Stage", Type: crmv1.FieldType_FIELD_TYPE_PICKLIST, PicklistValues: []string{"Qualification", "Negotiation/Review", "Closed Won"}},
			{ApiName: "Closing_Date", Label: "Closing Date", Type: crmv1.FieldType_FIELD_TYPE_DATE},
			{ApiName: "Account_Name", Label: "Account Name", Type: crmv1.FieldType_FIELD_TYPE_LOOKUP, LookupModule: "Accounts"},
			{ApiName: "Owner", Label: "Deal Owner", Type: crmv1.FieldType_FIELD_TYPE_OWNER},
		},
	}
}

// theDeal is the record every test shares.
func theDeal() *crmv1.Record {
	return &crmv1.Record{
		Module: "Deals", Id: "d-1001", Version: 1,
		Owner: &commonv1.CrmUserRef{Id: "crm-alice", Name: "Alice Johnson", Email: aliceEmail},
		Fields: map[string]*crmv1.FieldValue{
			"Deal_Name":    {Kind: &crmv1.FieldValue_Text{Text: "Zylker Q4 licences"}},
			"Amount":       {Kind: &crmv1.FieldValue_Number{Number: 125000}},
			"Stage":        {Kind: &crmv1.FieldValue_Text{Text: "Negotiation/Review"}},
			"Closing_Date": {Kind: &crmv1.FieldValue_Date{Date: "2026-12-15"}},
			"Account_Name": {Kind: &crmv1.FieldValue_Lookup{Lookup: &crmv1.LookupValue{Id: "a-1", Name: "Zylker Corp", Module: "Accounts"}}},
			"Owner":        {Kind: &crmv1.FieldValue_Lookup{Lookup: &crmv1.LookupValue{Id: "crm-alice", Name: "Alice Johnson"}}},
		},
	}
}

// seedCRM publishes what the CRM would: Alice as a CRM user and the deal,
// and waits until the query service knows the deal.
func (s *stack) seedCRM(t *testing.T) {
	t.Helper()
	ctx := testkit.Context(t)
	items := []bus.Published{
		{Subject: topology.CrmUser(org, "upserted"), Event: &crmv1.CrmUserUpserted{Envelope: harness.Envelope(org, ""),
			User: &crmv1.CrmUser{Id: "crm-alice", Email: aliceEmail, FullName: "Alice Johnson", Active: true, Version: 1}}},
		{Subject: topology.RecordUpserted(org, "Deals"), Event: &crmv1.RecordUpserted{Envelope: harness.Envelope(org, ""), Record: theDeal(), Schema: dealSchema()}},
	}
	if err := s.bus.PublishBatch(ctx, items); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, func() bool {
		_, err := s.query.GetRecord(ctx, &queryv1.GetRecordRequest{OrgId: org, Module: "Deals", RecordId: "d-1001"})
		return err == nil
	}, "the query service knows the deal")
}

// countOut counts the commands the SLACK_OUT stream holds.
func (s *stack) countOut(t *testing.T) uint64 {
	t.Helper()
	return harness.StreamMsgs(t, s.js, topology.StreamSlackOut)
}

// shareButtonKey is SHARE_BUTTON_KEY of both the query service and sharing.
const shareButtonKey = "e2e-share-button-key-0123456789abcdef"
