package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/libs/slackstandin"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/testkit/harness"
	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"
	workflowsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/workflows/v1"

	"github.com/crmslack/crmslack/services/delivery"
	"github.com/crmslack/crmslack/services/teams/teamstest"
	"github.com/crmslack/crmslack/services/workflows"
)

// The stand-in's default seed: Acme (Alice, Bob; #general and #sales with
// the bot in them) and Globex (#deals).
const (
	org        = "acme-crm"
	acme       = "T0ACME0001"
	globex     = "T0GLBX0001"
	alice      = "U0ACME0ALC"
	aliceEmail = "alice@acme.example"
	bob        = "U0ACME0BOB"
	acmeSales  = "C0ACMESALE"
	acmeGnrl   = "C0ACMEGNRL"
	crmBaseURL = "https://crm.example.com/crm/acme"

	clientID     = "1234567890.1234567890"
	clientSecret = "standin-client-secret"
)

// admin is the CRM admin who keeps the actions; she is Alice in Slack.
var admin = &teamsv1.Caller{User: &commonv1.CrmUserRef{Id: "crm-alice", Name: "Alice Johnson", Email: aliceEmail}, IsAdmin: true}

// stack is every service workflows works with, in-process, on embedded
// NATS and FerretDB, with the Slack stand-in playing Slack: the team
// registry, the delivery service (the only Slack egress) and workflows.
type stack struct {
	standin   *slackstandin.Server
	js        jetstream.JetStream
	bus       *bus.Bus
	registry  teamsv1.TeamRegistryServiceClient
	workflows workflowsv1.WorkflowActionsServiceClient
	// startWorkflows starts another workflows replica on the same parts.
	startWorkflows func() workflowsv1.WorkflowActionsServiceClient
}

type options struct {
	rateLimits bool
	// quiet drops the services' logs (the benchmarks).
	quiet bool
	// noDelivery leaves the egress out: commands stay on SLACK_OUT.
	noDelivery bool
}

func logger(t testing.TB, svc string, o options) *slog.Logger {
	if o.quiet {
		return slog.New(slog.DiscardHandler)
	}
	return testkit.Logger(t).With("svc", svc)
}

func startStack(t testing.TB, o options) *stack {
	t.Helper()
	ns := testkit.NATS(t)
	ms := testkit.Mongo(t)
	std := harness.Standin(t, slackstandin.Config{
		App:        slackstandin.AppConfig{SigningSecret: "standin-signing-secret", ClientID: clientID, ClientSecret: clientSecret},
		RateLimits: slackstandin.RateLimits{Disabled: !o.rateLimits},
	})
	s := &stack{standin: std}
	s.js = testkit.JetStream(t, testkit.NATSConn(t, ns))
	s.bus = harness.Bus(t, ns.ClientURL(), "e2e-crm", logger(t, "crm", o))

	r := testkit.NewServices(t)
	apiURL := std.URL() + "/api/"
	reg := teamstest.Start(t, r, teamstest.Options{
		PKI: testkit.PKI(t), NATSURL: ns.ClientURL(), MongoURI: ms.URI(), Standin: std,
		ClientID: clientID, ClientSecret: clientSecret, Log: logger(t, "teams", o),
	})
	ta := reg.Addrs
	s.registry = reg.Client
	reg.Install(t, org, teamstest.Workspace{ID: acme, Name: "Acme Corp", Domain: "acme-corp", Bot: "U0ACMEBOT1"},
		teamstest.Workspace{ID: globex, Name: "Globex", Domain: "globex", Bot: "U0GLBXBOT1"})
	// Delivery on its shipped defaults, but for addresses and Slack's
	// per-channel pace (the stand-in's rate limits are off too).
	dcfg := delivery.ConfigFromEnv(envconfig.FromMap(map[string]string{
		"NATS_URL": ns.ClientURL(), "MONGODB_URI": ms.URI(), "DELIVERY_GRPC_ADDR": "127.0.0.1:0", "DELIVERY_OPS_ADDR": "127.0.0.1:0",
		"TEAMS_ADDR": ta.GRPC, "SLACK_API_URL": apiURL, "DELIVERY_CHANNEL_RATE": "100000", "DELIVERY_CHANNEL_BURST": "10000",
	}))
	dcfg.Files = testkit.TrustFiles(t, testkit.PKI(t), "delivery")
	if !o.noDelivery {
		testkit.Start(r, "delivery", func(ctx context.Context, ready func(delivery.Addrs)) error {
			cfg := dcfg
			cfg.Ready = ready
			return delivery.Run(ctx, cfg, logger(t, "delivery", o), prometheus.NewRegistry())
		})
	}
	replica := 0
	s.startWorkflows = func() workflowsv1.WorkflowActionsServiceClient {
		replica++
		wa := testkit.Start(r, fmt.Sprintf("workflows-%d", replica), func(ctx context.Context, ready func(workflows.Addrs)) error {
			return workflows.Run(ctx, workflows.Config{
				Connections: harness.Connections(t, testkit.PKI(t), "workflows", ns.ClientURL(), ms.URI()),
				TeamsAddr:   ta.GRPC, CRMBaseURL: crmBaseURL,
				Ready: ready,
			}, logger(t, "workflows", o), prometheus.NewRegistry())
		})
		return workflowsv1.NewWorkflowActionsServiceClient(testkit.Dial(t, wa.GRPC))
	}
	s.workflows = s.startWorkflows()
	return s
}

func dealSchema() *crmv1.ModuleSchema {
	return &crmv1.ModuleSchema{
		Module: "Deals", SingularLabel: "Deal", PluralLabel: "Deals", DisplayField: "Deal_Name", HasCardView: true,
		Fields: []*crmv1.FieldMeta{
			{ApiName: "Deal_Name", Label: "Deal Name", Type: crmv1.FieldType_FIELD_TYPE_SINGLE_LINE},
			{ApiName: "Amount", Label: "Amount", Type: crmv1.FieldType_FIELD_TYPE_CURRENCY, CurrencyCode: "EUR"},
			{ApiName: "Stage", Label: "Stage", Type: crmv1.FieldType_FIELD_TYPE_PICKLIST, PicklistValues: []string{"Qualification", "Closed Won"}},
			{ApiName: "Closing_Date", Label: "Closing Date", Type: crmv1.FieldType_FIELD_TYPE_DATE},
			{ApiName: "Next_Step", Label: "Next Step", Type: crmv1.FieldType_FIELD_TYPE_SINGLE_LINE},
			{ApiName: "Probability", Label: "Probability (%)", Type: crmv1.FieldType_FIELD_TYPE_PERCENT},
			{ApiName: "Tags", Label: "Tags", Type: crmv1.FieldType_FIELD_TYPE_MULTI_PICKLIST},
			{ApiName: "Account_Name", Label: "Account Name", Type: crmv1.FieldType_FIELD_TYPE_LOOKUP, LookupModule: "Accounts"},
			{ApiName: "Owner", Label: "Deal Owner", Type: crmv1.FieldType_FIELD_TYPE_OWNER},
		},
	}
}

func deal(id, name string) *crmv1.Record {
	return &crmv1.Record{
		Module: "Deals", Id: id, Version: 1,
		Owner: &commonv1.CrmUserRef{Id: "crm-alice", Name: "Alice Johnson", Email: aliceEmail},
		Fields: map[string]*crmv1.FieldValue{
			"Deal_Name":    {Kind: &crmv1.FieldValue_Text{Text: name}},
			"Amount":       {Kind: &crmv1.FieldValue_Number{Number: 125000}},
			"Stage":        {Kind: &crmv1.FieldValue_Text{Text: "Closed Won"}},
			"Closing_Date": {Kind: &crmv1.FieldValue_Date{Date: "2026-12-15"}},
			"Probability":  {Kind: &crmv1.FieldValue_Number{Number: 90}},
			"Tags":         {Kind: &crmv1.FieldValue_Multi{Multi: &crmv1.StringList{Values: []string{"Enterprise", "Renewal"}}}},
			"Account_Name": {Kind: &crmv1.FieldValue_Lookup{Lookup: &crmv1.LookupValue{Id: "a-1", Name: "Zylker Corp", Module: "Accounts"}}},
			"Owner":        {Kind: &crmv1.FieldValue_Lookup{Lookup: &crmv1.LookupValue{Id: "crm-alice", Name: "Alice Johnson"}}},
		},
	}
}

func trigger(eventID, rule string, rec *crmv1.Record) *crmv1.WorkflowRuleTriggered {
	return &crmv1.WorkflowRuleTriggered{Envelope: harness.Envelope(org, eventID), RuleId: rule, RuleName: "Big deal won",
		Trigger: crmv1.WorkflowTrigger_WORKFLOW_TRIGGER_FIELD_UPDATE, Record: rec, Schema: dealSchema(),
		TriggeredBy: &commonv1.CrmUserRef{Id: "crm-alice", Name: "Alice Johnson", Email: aliceEmail}}
}

func (s *stack) publish(t testing.TB, evs ...bus.Event) {
	t.Helper()
	harness.Publish(t, s.bus, evs...)
}

// seedSchema publishes a deal, so workflows learns the Deals schema, and
// waits until it does (an action using it can be saved).
func (s *stack) seedSchema(t testing.TB) {
	t.Helper()
	s.publish(t, &crmv1.RecordUpserted{Envelope: harness.Envelope(org, ""), Record: deal("d-0", "Seed"), Schema: dealSchema()})
	testkit.Eventually(t, 20*time.Second, func() bool {
		_, err := s.workflows.CreateAction(testkit.Context(t), &workflowsv1.CreateActionRequest{OrgId: org, Caller: admin,
			Spec: &workflowsv1.ActionSpec{RuleId: "probe", Module: "Deals", Template: "#{Deals.NoSuchField}", TeamId: acme,
				TargetKind: workflowsv1.TargetKind_TARGET_KIND_CHANNELS, Targets: []string{acmeSales}}})
		return status.Code(err) == codes.InvalidArgument
	}, "workflows knows the Deals schema and the org's teams")
}

// countOut counts the commands the SLACK_OUT stream holds.
func (s *stack) countOut(t testing.TB) uint64 {
	t.Helper()
	return harness.StreamMsgs(t, s.js, topology.StreamSlackOut)
}

// triggersDone waits until the workflows consumer has acknowledged every
// trigger the CRM stream holds.
func (s *stack) triggersDone(t testing.TB) {
	t.Helper()
	testkit.Eventually(t, 30*time.Second, func() bool {
		st, err := s.js.Stream(testkit.Context(t), topology.StreamCRM)
		if err != nil {
			return false
		}
		c, err := st.Consumer(testkit.Context(t), "workflows-triggers")
		if err != nil {
			return false
		}
		info, err := c.Info(testkit.Context(t))
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0
	}, "workflows handled every trigger")
}
