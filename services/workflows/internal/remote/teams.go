// Package remote is workflows' adapter to the team registry
// (teams.v1.TeamRegistryService): which teams an admin belongs to, and a
// team's directory, asked when an action is saved (rarely: the registry
// caches directories itself). Its refusals keep their message; anything
// else is unavailable.
package remote

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"

	"github.com/crmslack/crmslack/services/workflows/internal/action"
	"github.com/crmslack/crmslack/services/workflows/internal/app"
)

// callTimeout bounds one call; a cold directory is read from Slack page by
// page.
const callTimeout = 20 * time.Second

// maxDirectoryBytes bounds a ListDirectory answer (about a million people).
const maxDirectoryBytes = 64 << 20

// Teams implements app.Teams.
type Teams struct {
	c teamsv1.TeamRegistryServiceClient
}

// NewTeams returns the client on cc.
func NewTeams(cc grpc.ClientConnInterface) *Teams {
	return &Teams{c: teamsv1.NewTeamRegistryServiceClient(cc)}
}

// MemberTeams lists the org's active teams the email belongs to.
func (t *Teams) MemberTeams(ctx context.Context, org, email string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := t.c.ListTeams(ctx, &teamsv1.ListTeamsRequest{OrgId: org, MemberEmail: email})
	if err != nil {
		return nil, classify(err, "asking the team registry which teams "+email+" belongs to")
	}
	var out []string
	for _, ot := range resp.GetTeams() {
		if ot.GetStatus() == teamsv1.TeamStatus_TEAM_STATUS_ACTIVE {
			out = append(out, ot.GetTeam().GetTeamId())
		}
	}
	return out, nil
}

// Directory lists the channels the app can post to and the people of a
// team.
func (t *Teams) Directory(ctx context.Context, org, team string) (app.Directory, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := t.c.ListDirectory(ctx, &teamsv1.ListDirectoryRequest{OrgId: org, TeamId: team}, grpc.MaxCallRecvMsgSize(maxDirectoryBytes))
	if err != nil {
		return app.Directory{}, classify(err, "listing the channels and people of team "+team)
	}
	d := app.Directory{Channels: map[string]bool{}, Users: map[string]bool{}}
	for _, ch := range resp.GetChannels() {
		if ch.GetCanPost() {
			d.Channels[ch.GetId()] = true
		}
	}
	for _, u := range resp.GetUsers() {
		d.Users[u.GetId()] = true
	}
	return d, nil
}

func classify(err error, doing string) error {
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.NotFound:
		return action.Errorf(action.ErrNotFound, "%s: %s", doing, st.Message())
	case codes.FailedPrecondition:
		return action.Errorf(action.ErrPrecondition, "%s: %s", doing, st.Message())
	case codes.InvalidArgument:
		return action.Errorf(action.ErrInvalid, "%s: %s", doing, st.Message())
	case codes.PermissionDenied:
		return action.Errorf(action.ErrDenied, "%s: %s", doing, st.Message())
	}
	return action.Errorf(action.ErrUnavailable, "%s: %s", doing, st.Message())
}
