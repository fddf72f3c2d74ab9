package app

import (
	"context"
	"errors"
	"time"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/services/teams/internal/registry"
)

// Repo is the registry's storage (mongorepo implements it).
type Repo interface {
	Team(ctx context.Context, org, team string) (registry.Team, bool, error)
	TeamsOfOrg(ctx context.Context, org string) ([]registry.Team, error)
	RowsOfTeam(ctx context.Context, team string) ([]registry.Team, error)
	RotatingTeams(ctx context.Context) ([]registry.Team, error)
	DirtyTeams(ctx context.Context) ([]registry.Team, error)
	OrgIDs(ctx context.Context) ([]string, error)
	SaveTeam(ctx context.Context, t *registry.Team) error
	Org(ctx context.Context, org string) (registry.Org, bool, error)
	DirtyOrgs(ctx context.Context) ([]registry.Org, error)
	SaveOrg(ctx context.Context, o *registry.Org) error
	// ClaimRefresh takes row id's refresh lease for holder until until,
	// false while another holder's is live; ReleaseRefresh drops it.
	ClaimRefresh(ctx context.Context, id, holder string, now, until time.Time) (bool, error)
	ReleaseRefresh(ctx context.Context, id, holder string) error
}

// Publisher publishes one event and waits for the stream's ack (bus.Bus
// implements it).
type Publisher interface {
	Publish(ctx context.Context, subject string, ev bus.Event) error
}

// AccessStore keeps each org's access for the egress (the org_access
// bucket). Sync must leave the value computed by a call of compute that
// started after every earlier Sync of the same org returned, whatever other
// replicas do.
type AccessStore interface {
	Sync(ctx context.Context, org string, compute func(context.Context) (registry.Access, error)) error
}

// Tokens are what Slack hands out: an access token and, with rotation, a
// refresh token and the access token's expiry.
type Tokens struct {
	AccessToken  string
	RefreshToken string
	ExpiresAt    time.Time
}

// Slack is the part of Slack's Web API the registry calls.
type Slack interface {
	// Refresh trades a refresh token for a new pair (oauth.v2.access,
	// grant_type refresh_token).
	Refresh(ctx context.Context, refreshToken string) (Tokens, error)
	// IsMember reports whether email belongs to an active person of the
	// bot token's team (users.lookupByEmail).
	IsMember(ctx context.Context, botToken, email string) (bool, error)
	// AuthTest checks a token (auth.test).
	AuthTest(ctx context.Context, botToken string) error
	// UserInfo returns a user of the token's team (users.info); found is
	// false when Slack does not know the user.
	UserInfo(ctx context.Context, botToken, userID string) (u SlackUser, found bool, err error)
	// Channels lists the team's public channels and the private ones the
	// bot is in, archived ones included (conversations.list, every page).
	Channels(ctx context.Context, botToken string) ([]SlackChannel, error)
	// Users lists the team's members, bots and deactivated ones included
	// (users.list, every page).
	Users(ctx context.Context, botToken string) ([]SlackMember, error)
	// Revoke revokes a token at Slack (auth.revoke).
	Revoke(ctx context.Context, token string) error
}

// SlackUser is a Slack user's profile as the registry passes it on.
type SlackUser struct {
	Email    string
	RealName string
	Deleted  bool
}

// SlackError is a Web API failure with Slack's error code, e.g.
// "invalid_auth". Adapters wrap such failures in it so the app can tell a
// dead token from a network problem.
type SlackError struct{ Code string }

func (e *SlackError) Error() string { return "slack: " + e.Code }

// slackCode returns the Slack error code in err's chain, or "".
func slackCode(err error) string {
	var se *SlackError
	if errors.As(err, &se) {
		return se.Code
	}
	return ""
}

// deadTokenCodes are Slack's answers meaning the token will never work
// again.
var deadTokenCodes = map[string]bool{
	"invalid_auth": true, "token_revoked": true, "account_inactive": true, "not_authed": true,
	"invalid_refresh_token": true, "invalid_grant": true, "token_expired": true,
}
