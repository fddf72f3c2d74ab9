// Package teamsclient adapts the team registry's gRPC API
// (crmslack.teams.v1.TeamRegistryService) to the query service's ports:
// GetSlackUser for the caller's email (app.Directory) and ResolveTeam for
// the orgs of a team (app.TeamOrgs), each behind a small cache so a
// slash command rarely waits on the network.
package teamsclient

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"
	"github.com/crmslack/crmslack/services/query/internal/app"
)

// Defaults.
const (
	// DefaultUserTTL: a Slack user's email rarely changes; ten minutes
	// bounds how long a changed or removed email is still honoured.
	DefaultUserTTL = 10 * time.Minute
	// unknownTTL: "no such user" is remembered briefly, so a user just
	// added to the workspace is seen soon.
	unknownTTL = time.Minute
	// orgsTTL: how long a team's orgs are remembered. A removed team stops
	// at the gateway at once; this only matters for shared teams.
	orgsTTL = 30 * time.Second
	// callTimeout bounds each registry call: the gateway's whole budget is
	// well under Slack's 3 seconds.
	callTimeout = 1500 * time.Millisecond
	// maxEntries bounds each cache; when full it is cleared (answers are
	// cheap to get again).
	maxEntries = 100_000
)

// Client is safe for concurrent use.
type Client struct {
	api     teamsv1.TeamRegistryServiceClient
	userTTL time.Duration
	now     func() time.Time

	mu    sync.Mutex
	users map[[2]string]userEntry
	orgs  map[string]orgsEntry
}

type userEntry struct {
	u       app.SlackUser
	unknown bool
	expires time.Time
}

type orgsEntry struct {
	orgs    []string
	expires time.Time
}

// New returns a client over cc. userTTL 0 means DefaultUserTTL; now nil
// means time.Now.
func New(cc grpc.ClientConnInterface, userTTL time.Duration, now func() time.Time) *Client {
	if userTTL <= 0 {
		userTTL = DefaultUserTTL
	}
	if now == nil {
		now = time.Now
	}
	return &Client{api: teamsv1.NewTeamRegistryServiceClient(cc), userTTL: userTTL, now: now,
		users: map[[2]string]userEntry{}, orgs: map[string]orgsEntry{}}
}

// SlackUser implements app.Directory.
func (c *Client) SlackUser(ctx context.Context, team, user string) (app.SlackUser, error) {
	key := [2]string{team, user}
	now := c.now()
	c.mu.Lock()
	e, ok := c.users[key]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		if e.unknown {
			return app.SlackUser{}, app.ErrUnknownSlackUser
		}
		return e.u, nil
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.api.GetSlackUser(ctx, &teamsv1.GetSlackUserRequest{TeamId: team, UserId: user})
	switch status.Code(err) {
	case codes.OK:
		e = userEntry{u: app.SlackUser{Email: resp.GetEmail(), RealName: resp.GetRealName(), Deleted: resp.GetDeleted()}, expires: now.Add(c.userTTL)}
	case codes.NotFound:
		e = userEntry{unknown: true, expires: now.Add(unknownTTL)}
	case codes.FailedPrecondition:
		// The team's token is dead; not cached, so a reinstall is seen at once.
		return app.SlackUser{}, fmt.Errorf("teams GetSlackUser: %w: %w", app.ErrNeedsReauth, err)
	default:
		return app.SlackUser{}, fmt.Errorf("teams GetSlackUser: %w", err)
	}
	c.mu.Lock()
	if len(c.users) >= maxEntries {
		clear(c.users)
	}
	c.users[key] = e
	c.mu.Unlock()
	if e.unknown {
		return app.SlackUser{}, app.ErrUnknownSlackUser
	}
	return e.u, nil
}

// OrgsOfTeam implements app.TeamOrgs.
func (c *Client) OrgsOfTeam(ctx context.Context, team string) ([]string, error) {
	now := c.now()
	c.mu.Lock()
	e, ok := c.orgs[team]
	c.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.orgs, nil
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.api.ResolveTeam(ctx, &teamsv1.ResolveTeamRequest{TeamId: team})
	var orgs []string
	switch status.Code(err) {
	case codes.OK:
		if resp.GetIntegrationEnabled() {
			orgs = resp.GetOrgIds()
		}
	case codes.NotFound:
	default:
		return nil, fmt.Errorf("teams ResolveTeam: %w", err)
	}
	c.mu.Lock()
	if len(c.orgs) >= maxEntries {
		clear(c.orgs)
	}
	c.orgs[team] = orgsEntry{orgs: orgs, expires: now.Add(orgsTTL)}
	c.mu.Unlock()
	return orgs, nil
}
