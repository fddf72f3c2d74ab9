package e2e

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/slackstandin"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	integrationv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/integration/v1"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"
)

const reconnect = "must be reconnected to the CRM"

// A team's token revoked at Slack without the app being told (the
// tokens_revoked event lost): the next /zcrm that needs Slack finds out,
// the registry marks the team as needing re-authorization, ListTeams shows
// it, the CRM gets a TeamRemoved (token invalid), and every /zcrm of the
// team says to reconnect instead of going silent. Reinstalling clears it.
func TestRevokedTokenAsksToReconnect(t *testing.T) {
	s := startStack(t, stackOptions{})
	ctx := testkit.Context(t)
	s.seedCRM(t)
	if a := answered(t, s.slash(t, acme, acmeSales, alice, "leads")); a.total <= 0 {
		t.Fatalf("before the revocation: %s", a.Text)
	}

	s.standin.RevokeTeam(acme) // and Slack's tokens_revoked event is lost
	// Bob was never looked up: answering him needs Slack, which refuses.
	if a := answered(t, s.slash(t, acme, acmeSales, bob, "leads")); !strings.Contains(a.Text, reconnect) {
		t.Fatalf("first /zcrm after the revocation: %q", a.Text)
	}
	testkit.Eventually(t, testkit.DefaultTimeout, func() bool {
		resp, err := s.registry.ListTeams(ctx, &teamsv1.ListTeamsRequest{OrgId: org, IncludeRemoved: true})
		return err == nil && len(resp.GetTeams()) == 1 && resp.GetTeams()[0].GetStatus() == teamsv1.TeamStatus_TEAM_STATUS_BROKEN
	}, "ListTeams shows the team as needing re-authorization")
	st, err := s.js.Stream(ctx, topology.StreamIntegration)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := st.GetLastMsgForSubject(ctx, topology.Team(org, "removed"))
	if err != nil {
		t.Fatalf("no TeamRemoved for the CRM: %v", err)
	}
	var removed integrationv1.TeamRemoved
	if err := proto.Unmarshal(msg.Data, &removed); err != nil {
		t.Fatal(err)
	}
	if removed.GetTeamId() != acme || removed.GetReason() != integrationv1.TeamRemovedReason_TEAM_REMOVED_REASON_TOKEN_INVALID {
		t.Fatalf("the CRM got %v", &removed)
	}
	// Alice too, whose profile is cached: the gateway knows the team now.
	testkit.Eventually(t, testkit.DefaultTimeout, func() bool {
		return strings.Contains(answered(t, s.slash(t, acme, acmeSales, alice, "leads")).Text, reconnect)
	}, "every /zcrm of the team says to reconnect")

	// The admin reconnects Slack: a fresh install clears the mark.
	_, err = s.registry.CompleteInstall(ctx, &teamsv1.CompleteInstallRequest{
		OrgId: org, InstalledBy: &commonv1.CrmUserRef{Id: "crm-admin", Name: "Ada Admin"},
		Team:     &integrationv1.Team{TeamId: acme, Name: "Acme Corp", Domain: "acme-corp", BotUserId: "U0ACMEBOT1", Scopes: slackstandin.DefaultBotScopes()},
		BotToken: s.standin.IssueBotToken(acme),
	})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, testkit.DefaultTimeout, func() bool {
		return answered(t, s.slash(t, acme, acmeSales, alice, "leads")).total > 0
	}, "after reinstalling, /zcrm answers with results again")
}
