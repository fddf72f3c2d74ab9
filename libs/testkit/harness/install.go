package harness

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/crmslack/crmslack/libs/testkit"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"
)

// InstallThroughGateway connects a stand-in workspace to org the way an
// admin does: BeginInstall as the CRM (cc carries its credential), then
// the browser through the gateway, the stand-in's consent page and back.
func InstallThroughGateway(t testing.TB, cc grpc.ClientConnInterface, org, teamHint string, admin *teamsv1.Caller) {
	t.Helper()
	begun, err := teamsv1.NewTeamRegistryServiceClient(cc).BeginInstall(testkit.Context(t), &teamsv1.BeginInstallRequest{
		OrgId: org, TeamHint: teamHint, Caller: admin,
	})
	if err != nil {
		t.Fatalf("BeginInstall: %v", err)
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := browser.Get(begun.GetInstallUrl())
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "Slack is connected") {
		t.Fatalf("install ended with HTTP %d:\n%s", resp.StatusCode, page)
	}
}
