// Package teamstest runs the team registry inside another service's
// end-to-end tests: on the test's NATS and MongoDB, with the Slack
// stand-in as Slack, and installs the test's workspaces in an org as its
// admin would. Every e2e harness that needs teams starts it here, so a
// setting the registry gains is set once.
package teamstest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmslack/crmslack/libs/devpki"
	"github.com/crmslack/crmslack/libs/slackstandin"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/testkit/harness"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	integrationv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/integration/v1"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"

	"github.com/crmslack/crmslack/services/teams"
)

// Options say where the registry runs.
type Options struct {
	// PKI is the test's development CA (testkit.PKI). Required.
	PKI *devpki.Dir
	// NATSURL and MongoURI are the test's servers. Required.
	NATSURL, MongoURI string
	// Standin is Slack. Required.
	Standin *slackstandin.Server
	// ClientID and ClientSecret are the stand-in app's. Required.
	ClientID, ClientSecret string
	// GatewayPublicURL is where BeginInstall sends admins. Empty: no
	// gateway in the test.
	GatewayPublicURL string
	// InstallTicketKey is the key shared with the test's gateway. Empty: a
	// random one.
	InstallTicketKey string
	// Log is the registry's logger. Nil: testkit.Logger.
	Log *slog.Logger
}

// Registry is a running team registry.
type Registry struct {
	// Addrs are its bound addresses.
	Addrs teams.Addrs
	// Client calls it as callers the authorization table allows.
	Client teamsv1.TeamRegistryServiceClient

	standin *slackstandin.Server
}

// Start runs the registry among the test's services r until the test ends,
// and waits until it is ready.
func Start(t testing.TB, r *testkit.Services, o Options) *Registry {
	t.Helper()
	if o.GatewayPublicURL == "" {
		o.GatewayPublicURL = "http://127.0.0.1:1"
	}
	if o.InstallTicketKey == "" {
		o.InstallTicketKey = testkit.RandomKey(t)
	}
	if o.Log == nil {
		o.Log = testkit.Logger(t).With("svc", "teams")
	}
	addrs := testkit.Start(r, "teams", func(ctx context.Context, ready func(teams.Addrs)) error {
		return teams.Run(ctx, teams.Config{
			Connections:      harness.Connections(t, o.PKI, "teams", o.NATSURL, o.MongoURI),
			TokenKeys:        "k1:" + testkit.RandomKey(t),
			InstallTicketKey: o.InstallTicketKey, GatewayPublicURL: o.GatewayPublicURL, SlackAPIURL: o.Standin.URL() + "/api/",
			SlackClientID: o.ClientID, SlackClientSecret: o.ClientSecret,
			RefreshInterval: time.Hour, SweepInterval: time.Second, MembershipTTL: time.Minute, DirectoryTTL: time.Minute,
			Ready: ready,
		}, o.Log, prometheus.NewRegistry())
	})
	return &Registry{
		Addrs:   addrs,
		Client:  teamsv1.NewTeamRegistryServiceClient(testkit.AllowedConn(t, o.PKI, addrs.GRPC)),
		standin: o.Standin,
	}
}

// Workspace is a Slack workspace the test installs.
type Workspace struct {
	ID, Name, Domain string
	// Bot is the app's bot user in it.
	Bot string
}

// Admin is the CRM user who installs the workspaces.
var Admin = &commonv1.CrmUserRef{Id: "crm-admin", Name: "Ada Admin"}

// Install adds each workspace to org, as org's admin would, with a bot
// token the stand-in honours.
func (r *Registry) Install(t testing.TB, org string, ws ...Workspace) {
	t.Helper()
	for _, w := range ws {
		if _, err := r.Client.CompleteInstall(testkit.Context(t), &teamsv1.CompleteInstallRequest{
			OrgId: org, InstalledBy: Admin,
			Team:     &integrationv1.Team{TeamId: w.ID, Name: w.Name, Domain: w.Domain, BotUserId: w.Bot, Scopes: slackstandin.DefaultBotScopes()},
			BotToken: r.standin.IssueBotToken(w.ID),
		}); err != nil {
			t.Fatalf("teamstest: installing %s: %v", w.ID, err)
		}
	}
}
