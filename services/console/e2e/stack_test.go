package e2e

import (
	"context"
	"log/slog"
	"net"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/libs/slackstandin"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/testkit/harness"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"

	"github.com/crmslack/crmslack/services/delivery"
	"github.com/crmslack/crmslack/services/gateway"
	"github.com/crmslack/crmslack/services/reminders"
	"github.com/crmslack/crmslack/services/sharing"
	"github.com/crmslack/crmslack/services/signals"
	"github.com/crmslack/crmslack/services/teams/teamstest"
	"github.com/crmslack/crmslack/services/workflows"
)

// The stand-in's default seed: Acme (Alice, Bob; #general and #sales with
// the bot in them) and Globex.
const (
	acme       = "T0ACME0001"
	globex     = "T0GLBX0001"
	aliceEmail = "alice@acme.example"
	acmeSales  = "C0ACMESALE"

	clientID     = "1234567890.1234567890"
	clientSecret = "standin-client-secret"
)

// stack is the product in-process on embedded NATS and FerretDB with the
// Slack stand-in, and the console in front of it.
type stack struct {
	standin  *slackstandin.Server
	bus      *bus.Bus
	registry teamsv1.TeamRegistryServiceClient
	gateway  string
	console  string
}

func quiet(t testing.TB, svc string) *slog.Logger { return testkit.Logger(t).With("svc", svc) }

// startStack starts the services the console calls (team registry,
// gateway, workflows, signals, reminders, delivery) and the console, and
// connects Acme to consoleOrg.
func startStack(t testing.TB) *stack {
	t.Helper()
	pki := testkit.PKI(t, consoleOrg, freshOrg)
	ns := testkit.NATS(t)
	ms := testkit.Mongo(t)
	std := harness.Standin(t, slackstandin.Config{
		App:        slackstandin.AppConfig{SigningSecret: "standin-signing-secret", ClientID: clientID, ClientSecret: clientSecret},
		RateLimits: slackstandin.RateLimits{Disabled: true},
	})
	s := &stack{standin: std, bus: harness.Bus(t, ns.ClientURL(), "e2e-crm", quiet(t, "crm"))}
	apiURL := std.URL() + "/api/"
	gwLis := testkit.Listener(t)
	s.gateway = "http://" + gwLis.Addr().String()
	ticketKey := testkit.RandomKey(t)
	env := func(vars map[string]string) *envconfig.Loader {
		base := map[string]string{
			"NATS_URL": ns.ClientURL(), "MONGODB_URI": ms.URI(), "SLACK_API_URL": apiURL, "CRM_BASE_URL": "https://crm.example.com/crm/acme",
			"SLACK_CLIENT_ID": clientID, "SLACK_CLIENT_SECRET": clientSecret, "INSTALL_TICKET_KEY": ticketKey,
			"GATEWAY_PUBLIC_URL": s.gateway,
		}
		for k, v := range vars {
			base[k] = v
		}
		return envconfig.FromMap(base)
	}
	r := testkit.NewServices(t)

	reg := teamstest.Start(t, r, teamstest.Options{PKI: pki, NATSURL: ns.ClientURL(), MongoURI: ms.URI(), Standin: std,
		ClientID: clientID, ClientSecret: clientSecret, GatewayPublicURL: s.gateway, InstallTicketKey: ticketKey, Log: quiet(t, "teams")})
	reg.Install(t, consoleOrg, teamstest.Workspace{ID: acme, Name: "Acme Corp", Domain: "acme-corp", Bot: "U0ACMEBOT1"})
	ta := reg.Addrs
	s.registry = reg.Client
	withTeams := func(vars map[string]string) map[string]string { vars["TEAMS_ADDR"] = ta.GRPC; return vars }

	gcfg := gateway.ConfigFromEnv(env(withTeams(map[string]string{
		"GATEWAY_OPS_ADDR": "127.0.0.1:0", "GATEWAY_STATE_KEY": testkit.RandomKey(t), "SLACK_SIGNING_SECRET": "standin-signing-secret",
		"SLACK_AUTHORIZE_URL": std.URL() + "/oauth/v2/authorize", "QUERY_ADDR": "127.0.0.1:1",
	})))
	gcfg.Files = testkit.TrustFiles(t, pki, "gateway")
	gcfg.Listeners = map[string]net.Listener{gateway.ListenerHTTP: gwLis}
	testkit.Start(r, "gateway", func(ctx context.Context, ready func(gateway.Addrs)) error {
		gcfg.Ready = ready
		return gateway.Run(ctx, gcfg, quiet(t, "gateway"), prometheus.NewRegistry())
	})

	dcfg := delivery.ConfigFromEnv(env(withTeams(map[string]string{"DELIVERY_GRPC_ADDR": "127.0.0.1:0", "DELIVERY_OPS_ADDR": "127.0.0.1:0",
		"DELIVERY_CHANNEL_RATE": "100000", "DELIVERY_CHANNEL_BURST": "10000",
		// Two failed attempts give up on a command: the dead-letter test.
		"DELIVERY_MAX_ATTEMPTS": "2", "DELIVERY_BACKOFF_BASE": "10ms"})))
	dcfg.Files = testkit.TrustFiles(t, pki, "delivery")
	da := testkit.Start(r, "delivery", func(ctx context.Context, ready func(delivery.Addrs)) error {
		dcfg.Ready = ready
		return delivery.Run(ctx, dcfg, quiet(t, "delivery"), prometheus.NewRegistry())
	})

	wcfg := workflows.ConfigFromEnv(env(withTeams(map[string]string{"WORKFLOWS_GRPC_ADDR": "127.0.0.1:0", "WORKFLOWS_OPS_ADDR": "127.0.0.1:0"})))
	wcfg.Files = testkit.TrustFiles(t, pki, "workflows")
	wa := testkit.Start(r, "workflows", func(ctx context.Context, ready func(workflows.Addrs)) error {
		wcfg.Ready = ready
		return workflows.Run(ctx, wcfg, quiet(t, "workflows"), prometheus.NewRegistry())
	})

	scfg := signals.ConfigFromEnv(env(withTeams(map[string]string{"SIGNALS_GRPC_ADDR": "127.0.0.1:0", "SIGNALS_OPS_ADDR": "127.0.0.1:0"})))
	scfg.Files = testkit.TrustFiles(t, pki, "signals")
	sa := testkit.Start(r, "signals", func(ctx context.Context, ready func(signals.Addrs)) error {
		scfg.Ready = ready
		return signals.Run(ctx, scfg, quiet(t, "signals"), prometheus.NewRegistry())
	})

	rcfg := reminders.ConfigFromEnv(env(map[string]string{"REMINDERS_GRPC_ADDR": "127.0.0.1:0", "REMINDERS_OPS_ADDR": "127.0.0.1:0", "REMINDERS_BUTTON_KEY": testkit.RandomKey(t)}))
	rcfg.Files = testkit.TrustFiles(t, pki, "reminders")
	ra := testkit.Start(r, "reminders", func(ctx context.Context, ready func(reminders.Addrs)) error {
		rcfg.Ready = ready
		return reminders.Run(ctx, rcfg, quiet(t, "reminders"), prometheus.NewRegistry())
	})

	shcfg := sharing.ConfigFromEnv(env(withTeams(map[string]string{"SHARING_GRPC_ADDR": "127.0.0.1:0", "SHARING_OPS_ADDR": "127.0.0.1:0",
		"QUERY_ADDR": "127.0.0.1:1", "SHARE_BUTTON_KEY": testkit.RandomKey(t)})))
	shcfg.Files = testkit.TrustFiles(t, pki, "sharing")
	sha := testkit.Start(r, "sharing", func(ctx context.Context, ready func(sharing.Addrs)) error {
		shcfg.Ready = ready
		return sharing.Run(ctx, shcfg, quiet(t, "sharing"), prometheus.NewRegistry())
	})

	s.console = startConsole(t, apis{Teams: ta.GRPC, Workflows: wa.GRPC, Signals: sa.GRPC, Reminders: ra.GRPC, Delivery: da.GRPC, Sharing: sha.GRPC})
	return s
}
