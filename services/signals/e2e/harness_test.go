package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/libs/slackstandin"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/testkit/harness"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	signalsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/signals/v1"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"

	"github.com/crmslack/crmslack/services/delivery"
	"github.com/crmslack/crmslack/services/signals"
	"github.com/crmslack/crmslack/services/teams/teamstest"
)

// The stand-in's default seed: Acme (Alice, Bob, ...) and Globex (Hank, ...).
const (
	org        = "acme-crm"
	acme       = "T0ACME0001"
	globex     = "T0GLBX0001"
	alice      = "U0ACME0ALC"
	aliceEmail = "alice@acme.example"
	hank       = "U0GLBX0HNK"
	hankEmail  = "hank@globex.example"
	crmBaseURL = "https://crm.example.com/crm/acme"

	clientID     = "1234567890.1234567890"
	clientSecret = "standin-client-secret"
)

// stack is every service signals works with, in-process, on embedded NATS
// and FerretDB, with the Slack stand-in playing Slack: the team registry
// (owners' directory, org access), the delivery service (the only Slack
// egress) and signals itself.
type stack struct {
	standin  *slackstandin.Server
	js       jetstream.JetStream
	bus      *bus.Bus
	registry teamsv1.TeamRegistryServiceClient
	settings signalsv1.SalesSignalsSettingsServiceClient
	metrics  *prometheus.Registry

	// The signals service, which a test may restart.
	signalsCfg  signals.Config
	signalsLog  *slog.Logger
	stopSignals func()
}

type options struct {
	// seed is the stand-in's workspaces; nil: its default seed.
	seed   *slackstandin.Seed
	window time.Duration
	// channelRate and channelBurst are delivery's pacing per conversation;
	// 0: 1000/s, burst 100, above anything a test sends.
	channelRate  float64
	channelBurst int
	// tierOverrides is delivery's DELIVERY_TIER_OVERRIDES.
	tierOverrides string
	// quiet drops the services' logs (benchmarks).
	quiet bool
	// noDelivery leaves the egress out: commands stay on SLACK_OUT.
	noDelivery bool
}

func startStack(t testing.TB, o options) *stack {
	t.Helper()
	if o.window == 0 {
		o.window = 2 * time.Minute
	}
	if o.seed == nil {
		o.seed = slackstandin.DefaultSeed()
	}
	if o.channelRate == 0 {
		o.channelRate, o.channelBurst = 1000, 100
	}
	logger := func(t testing.TB, svc string) *slog.Logger {
		if o.quiet {
			return slog.New(slog.DiscardHandler)
		}
		return testkit.Logger(t).With("svc", svc)
	}
	ns := testkit.NATS(t)
	ms := testkit.Mongo(t)
	std := harness.Standin(t, slackstandin.Config{
		Seed:       o.seed,
		App:        slackstandin.AppConfig{SigningSecret: "standin-signing-secret", ClientID: clientID, ClientSecret: clientSecret},
		RateLimits: slackstandin.RateLimits{Disabled: true},
	})
	s := &stack{standin: std, metrics: prometheus.NewRegistry()}
	s.js = testkit.JetStream(t, testkit.NATSConn(t, ns))
	s.bus = harness.Bus(t, ns.ClientURL(), "e2e-crm", logger(t, "crm"))

	r := testkit.NewServices(t)
	apiURL := std.URL() + "/api/"
	reg := teamstest.Start(t, r, teamstest.Options{
		PKI: testkit.PKI(t), NATSURL: ns.ClientURL(), MongoURI: ms.URI(), Standin: std,
		ClientID: clientID, ClientSecret: clientSecret, Log: logger(t, "teams"),
	})
	ta := reg.Addrs
	s.registry = reg.Client
	for _, w := range o.seed.Workspaces {
		reg.Install(t, org, teamstest.Workspace{ID: w.ID, Name: w.Name, Domain: w.Domain, Bot: w.Bot.UserID})
	}

	// Delivery on its shipped defaults, but for the conversation pacing
	// the test chooses and the addresses it binds.
	vars := map[string]string{
		"NATS_URL": ns.ClientURL(), "MONGODB_URI": ms.URI(), "TEAMS_ADDR": ta.GRPC, "SLACK_API_URL": apiURL,
		"DELIVERY_GRPC_ADDR": "127.0.0.1:0", "DELIVERY_OPS_ADDR": "127.0.0.1:0",
		"DELIVERY_CHANNEL_RATE": strconv.FormatFloat(o.channelRate, 'f', -1, 64), "DELIVERY_CHANNEL_BURST": strconv.Itoa(o.channelBurst),
	}
	if o.tierOverrides != "" {
		vars["DELIVERY_TIER_OVERRIDES"] = o.tierOverrides
	}
	denv := envconfig.FromMap(vars)
	dcfg := delivery.ConfigFromEnv(denv)
	dcfg.Files = testkit.TrustFiles(t, testkit.PKI(t), "delivery")
	if err := denv.Err(); err != nil {
		t.Fatal(err)
	}
	if !o.noDelivery {
		testkit.Start(r, "delivery", func(ctx context.Context, ready func(delivery.Addrs)) error {
			dcfg.Ready = ready
			return delivery.Run(ctx, dcfg, logger(t, "delivery"), prometheus.NewRegistry())
		})
	}

	// Signals on its shipped defaults but for the storm window.
	senv := envconfig.FromMap(map[string]string{
		"NATS_URL": ns.ClientURL(), "TEAMS_ADDR": ta.GRPC, "CRM_BASE_URL": crmBaseURL,
		"SIGNALS_GRPC_ADDR": "127.0.0.1:0", "SIGNALS_OPS_ADDR": "127.0.0.1:0", "SIGNALS_STORM_WINDOW": o.window.String(),
	})
	scfg := signals.ConfigFromEnv(senv)
	scfg.Files = testkit.TrustFiles(t, testkit.PKI(t), "signals")
	if err := senv.Err(); err != nil {
		t.Fatal(err)
	}
	s.signalsCfg, s.signalsLog = scfg, logger(t, "signals")
	s.runSignals(t)
	t.Cleanup(func() { s.stopSignals() })
	return s
}

// runSignals starts the signals service, with a fresh metrics registry,
// and waits until it serves.
func (s *stack) runSignals(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	up := make(chan signals.Addrs, 1)
	done := make(chan error, 1)
	cfg := s.signalsCfg
	cfg.Ready = func(a signals.Addrs) { up <- a }
	s.metrics = prometheus.NewRegistry()
	go func() { done <- signals.Run(ctx, cfg, s.signalsLog, s.metrics) }()
	select {
	case a := <-up:
		s.settings = signalsv1.NewSalesSignalsSettingsServiceClient(testkit.Dial(t, a.GRPC))
	case err := <-done:
		cancel()
		t.Fatalf("signals stopped before it was ready: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("signals not ready in 60s")
	}
	var once sync.Once
	s.stopSignals = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("signals stopped with %v", err)
				}
			case <-time.After(45 * time.Second):
				t.Error("signals did not stop within 45s")
			}
		})
	}
}

var eventSeq atomic.Int64

func newID() string { return fmt.Sprintf("crm-%d-%d", time.Now().UnixNano(), eventSeq.Add(1)) }

// signal is a sales signal from customer (a contact id) to the owner.
func signal(channel crmv1.SignalChannel, kind, customer, ownerEmail string, at time.Time) *crmv1.SalesSignal {
	return &crmv1.SalesSignal{
		Envelope: &commonv1.Envelope{EventId: newID(), OrgId: org, OccurredAt: timestamppb.New(at), SchemaVersion: 1, Producer: "e2e-crm"},
		SignalId: "sig-" + newID(), Channel: channel, Kind: kind,
		Record:      &commonv1.RecordRef{Module: "Contacts", Id: customer, Name: "Customer " + customer},
		RecordOwner: &commonv1.CrmUserRef{Id: "crm-" + ownerEmail, Name: ownerEmail, Email: ownerEmail},
		From:        "Customer " + customer, FromPhone: "+1 555 0100", Summary: kind + " via " + channel.String(),
		Url: "https://chat.example.com/" + customer,
	}
}

func (s *stack) publish(t testing.TB, evs ...*crmv1.SalesSignal) {
	t.Helper()
	harness.Publish(t, s.bus, evs...)
}

var admin = &teamsv1.Caller{User: &commonv1.CrmUserRef{Id: "crm-admin", Name: "Ada Admin"}, IsAdmin: true}

func (s *stack) setCell(t testing.TB, channel crmv1.SignalChannel, kind string, on bool) {
	t.Helper()
	_, err := s.settings.UpdateCells(testkit.Context(t), &signalsv1.UpdateCellsRequest{
		OrgId: org, Caller: admin, Cells: []*signalsv1.Cell{{Channel: channel, Kind: kind, Slack: on}},
	})
	if err != nil {
		t.Fatalf("setting %s/%s to %v: %v", channel, kind, on, err)
	}
}

// posts are the messages posted (not updates) in the DM with user.
func (s *stack) posts(user string) []slackstandin.Message {
	return s.standin.Messages(slackstandin.MessageFilter{User: user, Kind: slackstandin.KindMessage})
}

// counter reads a counter of the signals service's registry.
func (s *stack) counter(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := s.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
