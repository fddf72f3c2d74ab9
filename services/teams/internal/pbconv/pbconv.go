// Package pbconv converts between the registry's domain types and the
// protobuf contracts. Nothing here carries a token: tokens have no field in
// any of the messages built here.
package pbconv

import (
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	integrationv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/integration/v1"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"

	"github.com/crmslack/crmslack/services/teams/internal/registry"
)

// Timestamp converts t, a zero t to nil.
func Timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// User converts a CRM user; the empty user becomes nil.
func User(u registry.User) *commonv1.CrmUserRef {
	if u == (registry.User{}) {
		return nil
	}
	return &commonv1.CrmUserRef{Id: u.ID, Name: u.Name, Email: u.Email}
}

// UserFrom converts a CRM user from the wire.
func UserFrom(u *commonv1.CrmUserRef) registry.User {
	return registry.User{ID: u.GetId(), Name: u.GetName(), Email: u.GetEmail()}
}

// Caller converts an admin call's caller.
func Caller(c *teamsv1.Caller) registry.Caller {
	return registry.Caller{User: UserFrom(c.GetUser()), IsAdmin: c.GetIsAdmin()}
}

// Team converts a team's public information.
func Team(info registry.TeamInfo, by registry.User, at time.Time) *integrationv1.Team {
	return &integrationv1.Team{
		TeamId: info.TeamID, Name: info.Name, Domain: info.Domain, EnterpriseId: info.EnterpriseID,
		BotUserId: info.BotUserID, AppId: info.AppID, Scopes: slices.Clone(info.Scopes),
		InstalledBy: User(by), InstallerSlackUserId: info.InstallerSlackUserID, InstalledAt: Timestamp(at),
	}
}

// TeamInfoFrom converts a team from the wire.
func TeamInfoFrom(t *integrationv1.Team) registry.TeamInfo {
	return registry.TeamInfo{
		TeamID: t.GetTeamId(), Name: t.GetName(), Domain: t.GetDomain(), EnterpriseID: t.GetEnterpriseId(),
		BotUserID: t.GetBotUserId(), AppID: t.GetAppId(), Scopes: slices.Clone(t.GetScopes()),
		InstallerSlackUserID: t.GetInstallerSlackUserId(),
	}
}

// Status converts a team status.
func Status(s registry.Status) teamsv1.TeamStatus {
	switch s {
	case registry.StatusActive:
		return teamsv1.TeamStatus_TEAM_STATUS_ACTIVE
	case registry.StatusRemoved:
		return teamsv1.TeamStatus_TEAM_STATUS_REMOVED
	case registry.StatusBroken:
		return teamsv1.TeamStatus_TEAM_STATUS_BROKEN
	}
	return teamsv1.TeamStatus_TEAM_STATUS_UNSPECIFIED
}

// Reason converts a removal reason.
func Reason(r registry.RemovalReason) integrationv1.TeamRemovedReason {
	switch r {
	case registry.ReasonAdmin:
		return integrationv1.TeamRemovedReason_TEAM_REMOVED_REASON_ADMIN
	case registry.ReasonAppUninstalled:
		return integrationv1.TeamRemovedReason_TEAM_REMOVED_REASON_APP_UNINSTALLED
	case registry.ReasonTokensRevoked:
		return integrationv1.TeamRemovedReason_TEAM_REMOVED_REASON_TOKENS_REVOKED
	case registry.ReasonTokenInvalid:
		return integrationv1.TeamRemovedReason_TEAM_REMOVED_REASON_TOKEN_INVALID
	}
	return integrationv1.TeamRemovedReason_TEAM_REMOVED_REASON_UNSPECIFIED
}

// OrgTeam converts a row as its org sees it.
func OrgTeam(t *registry.Team) *teamsv1.OrgTeam {
	return &teamsv1.OrgTeam{
		OrgId:          t.OrgID,
		Team:           Team(t.TeamInfo, t.InstalledBy, t.InstalledAt),
		Status:         Status(t.Status),
		UpdatedAt:      Timestamp(t.UpdatedAt),
		TokenRotation:  t.Rotating(),
		TokenExpiresAt: Timestamp(t.TokenExpiresAt),
	}
}

// Access converts an org's access for the org_access bucket.
func Access(a registry.Access) *teamsv1.OrgAccess {
	out := &teamsv1.OrgAccess{OrgId: a.OrgID, IntegrationEnabled: a.Enabled, UpdatedAt: Timestamp(a.At)}
	for _, t := range a.Teams {
		st := teamsv1.TeamStatus_TEAM_STATUS_ACTIVE
		if t.NeedsReauth {
			st = teamsv1.TeamStatus_TEAM_STATUS_BROKEN
		}
		out.Teams = append(out.Teams, &teamsv1.TeamAccess{TeamId: t.TeamID, BotUserId: t.BotUserID, Status: st})
	}
	return out
}
