// Package tokens gets each team's bot token from the team registry and keeps
// it in memory until shortly before it expires. When Slack refuses a token
// the registry is told (ReportTokenFailure): it refreshes a rotating token or
// marks the team broken, and the cached token is dropped either way.
//
// Tokens are never logged and never put into errors.
package tokens

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"

	"github.com/crmslack/crmslack/services/delivery/internal/failure"
)

// Registry is the part of the team registry delivery calls.
type Registry interface {
	GetBotToken(ctx context.Context, org, team string) (token string, expires time.Time, err error)
	ReportTokenFailure(ctx context.Context, org, team, slackError string) (refreshed bool, err error)
}

// expiryMargin is how long before its expiry a token is fetched again.
const expiryMargin = 5 * time.Minute

// maxAge bounds how long a non-expiring token is kept without asking again,
// so a reinstall elsewhere is picked up.
const maxAge = time.Hour

// Cache caches tokens per (org, team). Safe for concurrent use.
type Cache struct {
	reg Registry
	now func() time.Time

	mu     sync.Mutex
	tokens map[string]cached
	group  singleflight.Group
}

type cached struct {
	token   string
	renewAt time.Time
}

// New returns a cache over reg; now nil means time.Now.
func New(reg Registry, now func() time.Time) *Cache {
	if now == nil {
		now = time.Now
	}
	return &Cache{reg: reg, now: now, tokens: map[string]cached{}}
}

func key(org, team string) string { return org + "\x00" + team }

// Get returns a usable token for team in org. A registry answer that the
// team has no usable token becomes a *failure.Error; other errors are
// temporary.
func (c *Cache) Get(ctx context.Context, org, team string) (string, error) {
	k := key(org, team)
	c.mu.Lock()
	t, ok := c.tokens[k]
	c.mu.Unlock()
	if ok && c.now().Before(t.renewAt) {
		return t.token, nil
	}
	v, err, _ := c.group.Do(k, func() (any, error) {
		token, expires, err := c.reg.GetBotToken(ctx, org, team)
		if err != nil {
			return "", classify(err, org, team)
		}
		renewAt := c.now().Add(maxAge)
		if !expires.IsZero() && expires.Add(-expiryMargin).Before(renewAt) {
			renewAt = expires.Add(-expiryMargin)
		}
		c.mu.Lock()
		c.tokens[k] = cached{token: token, renewAt: renewAt}
		c.mu.Unlock()
		return token, nil
	})
	if err != nil {
		return "", err
	}
	return v.(string), nil
}

// Invalidate drops team's cached token.
func (c *Cache) Invalidate(org, team string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.tokens, key(org, team))
}

// ReportFailure tells the registry Slack refused team's token with
// slackError, drops the cached token, and reports whether a refreshed token
// is available.
func (c *Cache) ReportFailure(ctx context.Context, org, team, slackError string) (bool, error) {
	c.Invalidate(org, team)
	refreshed, err := c.reg.ReportTokenFailure(ctx, org, team, slackError)
	if err != nil {
		return false, fmt.Errorf("reporting %s for team %s: %w", slackError, team, err)
	}
	return refreshed, nil
}

// classify turns a registry error into a failure when it is final.
func classify(err error, org, team string) error {
	switch status.Code(err) {
	case codes.NotFound:
		return failure.Wrap(failure.TeamNotRegistered, err, "the team registry has no team %s for org %s", team, org)
	case codes.FailedPrecondition, codes.PermissionDenied:
		return failure.Wrap(failure.Auth, err, "the team registry has no usable token for team %s", team)
	}
	return fmt.Errorf("getting the bot token of team %s: %w", team, err)
}

// GRPC adapts the generated TeamRegistryService client.
type GRPC struct {
	Client teamsv1.TeamRegistryServiceClient
	// Timeout bounds each call. Default 5s.
	Timeout time.Duration
}

func (g GRPC) timeout() time.Duration {
	if g.Timeout > 0 {
		return g.Timeout
	}
	return 5 * time.Second
}

// GetBotToken implements Registry.
func (g GRPC) GetBotToken(ctx context.Context, org, team string) (string, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, g.timeout())
	defer cancel()
	resp, err := g.Client.GetBotToken(ctx, &teamsv1.GetBotTokenRequest{OrgId: org, TeamId: team})
	if err != nil {
		return "", time.Time{}, err
	}
	if resp.GetBotToken() == "" {
		return "", time.Time{}, status.Error(codes.FailedPrecondition, "the registry returned an empty token")
	}
	var expires time.Time
	if resp.GetExpiresAt() != nil {
		expires = resp.GetExpiresAt().AsTime()
	}
	return resp.GetBotToken(), expires, nil
}

// ReportTokenFailure implements Registry.
func (g GRPC) ReportTokenFailure(ctx context.Context, org, team, slackError string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, g.timeout())
	defer cancel()
	resp, err := g.Client.ReportTokenFailure(ctx, &teamsv1.ReportTokenFailureRequest{OrgId: org, TeamId: team, SlackError: slackError})
	if err != nil {
		return false, err
	}
	return resp.GetRefreshed(), nil
}
