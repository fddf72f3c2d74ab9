package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/testkit"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"
)

// TestConsolePages: on the whole product, every page renders for an admin
// and each action form reaches its API, its result visible on the page.
func TestConsolePages(t *testing.T) {
	s := startStack(t)
	b := newBrowser(t, s.console)
	b.signIn(aliceEmail, "admin")

	t.Run("teams", func(t *testing.T) { testTeams(t, s, b) })
	t.Run("workflows", func(t *testing.T) { testWorkflows(t, s, b) })
	t.Run("deliveries", func(t *testing.T) { testDeliveries(t, s, b) })
	t.Run("signals", func(t *testing.T) { testSignals(t, s, b) })
	t.Run("reminders", func(t *testing.T) { testReminders(t, s, b) })
	t.Run("user role", func(t *testing.T) { testUserRole(t, s) })
	t.Run("remove team", func(t *testing.T) { testRemoveTeam(t, s, b) })
}

func testTeams(t *testing.T, s *stack, b *browser) {
	must(t, "GET /teams", b.get("/teams"), http.StatusOK,
		`data-testid="team-row-`+acme+`"`, "Acme Corp", `data-testid="integration-status" data-enabled="true"`,
		`data-testid="install-submit"`, "Autoriser une autre équipe", `data-testid="session-user">`+aliceEmail)

	// Add to Slack: the registry's install URL, the gateway's, which sends
	// the browser on to Slack's (the stand-in's) authorize page.
	a := b.post("/teams/install", url.Values{"csrf": {b.csrf("/teams")}, "team_hint": {globex}})
	if a.Code != http.StatusSeeOther || !strings.HasPrefix(a.Location, s.gateway+"/slack/install") {
		t.Fatalf("install: %d → %q, want a redirect to the gateway's /slack/install", a.Code, a.Location)
	}
	req, _ := http.NewRequest(http.MethodGet, a.Location, nil)
	a = b.do(req)
	if a.Code/100 != 3 || !strings.HasPrefix(a.Location, s.standin.URL()+"/oauth/v2/authorize") {
		t.Fatalf("the install URL: %d → %q, want a redirect to Slack's authorize page", a.Code, a.Location)
	}

	// Disable, then enable: the registry's state changes and the page says so.
	a = b.post("/integration/disable", url.Values{"csrf": {b.csrf("/teams")}})
	if a.Code != http.StatusSeeOther {
		t.Fatalf("disable: %d:\n%s", a.Code, a.Body)
	}
	must(t, "after disabling", b.get(a.Location), http.StatusOK, `data-enabled="false"`, `data-testid="flash"`, `data-testid="integration-enable"`)
	integ, err := s.registry.GetIntegration(testkit.Context(t), &teamsv1.GetIntegrationRequest{OrgId: consoleOrg})
	if err != nil || integ.GetEnabled() {
		t.Fatalf("the registry after disabling: %v, %v", integ, err)
	}
	a = b.post("/integration/enable", url.Values{"csrf": {b.csrf("/teams")}})
	must(t, "after enabling", b.get(a.Location), http.StatusOK, `data-enabled="true"`)
}

// testRemoveTeam removes Acme last: other pages need it.
func testRemoveTeam(t *testing.T, s *stack, b *browser) {
	a := b.post("/teams/"+acme+"/remove", url.Values{"csrf": {b.csrf("/teams")}})
	if a.Code != http.StatusSeeOther {
		t.Fatalf("remove: %d:\n%s", a.Code, a.Body)
	}
	page := b.get(a.Location)
	must(t, "after removing", page, http.StatusOK, "Équipe supprimée")
	if strings.Contains(page.Body, `data-testid="team-remove-`+acme+`"`) {
		t.Fatalf("Acme can still be removed after its removal:\n%s", page.Body)
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		resp, err := s.registry.GetTeam(testkit.Context(t), &teamsv1.GetTeamRequest{OrgId: consoleOrg, TeamId: acme})
		return err == nil && resp.GetTeam().GetStatus() == teamsv1.TeamStatus_TEAM_STATUS_REMOVED
	}, "the registry never removed Acme")
}

// testUserRole: a CRM user who is not an admin reads, but the APIs refuse
// them the admin actions, and the page says so.
func testUserRole(t *testing.T, s *stack) {
	u := newBrowser(t, s.console)
	u.signIn("bob@acme.example", "user")
	page := u.get("/teams")
	must(t, "GET /teams as a user", page, http.StatusOK, `data-testid="team-row-`+acme+`"`)
	if strings.Contains(page.Body, `data-testid="team-remove-`) {
		t.Fatalf("a user is offered to remove teams:\n%s", page.Body)
	}
	for _, path := range []string{"/integration/disable", "/teams/" + acme + "/remove", "/signals/reset"} {
		must(t, "POST "+path+" as a user", u.post(path, url.Values{"csrf": {u.csrf("/teams")}}), http.StatusForbidden, "Non autorisé")
	}
	integ, err := s.registry.GetIntegration(testkit.Context(t), &teamsv1.GetIntegrationRequest{OrgId: consoleOrg})
	if err != nil || !integ.GetEnabled() {
		t.Fatalf("the integration after a user's refused disable: %v, %v", integ, err)
	}
}
