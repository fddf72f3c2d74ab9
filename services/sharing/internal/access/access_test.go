package access_test

import (
	"slices"
	"testing"

	"github.com/crmslack/crmslack/libs/testkit"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"

	"github.com/crmslack/crmslack/services/sharing/internal/access"
)

func TestViewKeepsActiveTeams(t *testing.T) {
	t.Parallel()
	v := access.New(testkit.Logger(t))
	if v.Synced() {
		t.Fatal("synced before anything was read")
	}
	v.Set("o1", &teamsv1.OrgAccess{OrgId: "o1", IntegrationEnabled: true, Teams: []*teamsv1.TeamAccess{
		{TeamId: "T1", Status: teamsv1.TeamStatus_TEAM_STATUS_ACTIVE},
		{TeamId: "T2", Status: teamsv1.TeamStatus_TEAM_STATUS_BROKEN},
	}})
	a, ok := v.Org("o1")
	if !ok || !a.Enabled || !slices.Equal(a.Teams, []string{"T1"}) {
		t.Errorf("o1: %+v %v", a, ok)
	}
	v.Set("o1", nil)
	if _, ok := v.Org("o1"); ok {
		t.Error("a deleted key must forget the org")
	}
}
