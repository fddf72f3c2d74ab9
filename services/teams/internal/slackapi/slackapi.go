// Package slackapi is the registry's Slack Web API client: token refresh
// (oauth.v2.access, grant_type refresh_token), users.lookupByEmail,
// users.info, auth.test, auth.revoke and the directory listings (conversations.list,
// users.list), through slack-go pointed at the configured API URL.
package slackapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/slack-go/slack"

	"github.com/crmslack/crmslack/services/teams/internal/app"
)

// Client calls Slack. Safe for concurrent use.
type Client struct {
	apiURL       string
	clientID     string
	clientSecret string
	http         *http.Client
	now          func() time.Time
}

// New returns a client. apiURL ends with a slash (https://slack.com/api/).
func New(apiURL, clientID, clientSecret string, hc *http.Client, now func() time.Time) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: 15 * time.Second}
	}
	if now == nil {
		now = time.Now
	}
	return &Client{apiURL: apiURL, clientID: clientID, clientSecret: clientSecret, http: hc, now: now}
}

// classify keeps Slack's error code, which the app needs, and nothing of
// the request.
func classify(err error) error {
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		return &app.SlackError{Code: se.Err}
	}
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return fmt.Errorf("slack rate limited, retry after %s", rl.RetryAfter)
	}
	return err
}

// Refresh trades a refresh token for a new access and refresh token.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (app.Tokens, error) {
	resp, err := slack.RefreshOAuthV2TokenContext(ctx, c.http, c.clientID, c.clientSecret, refreshToken, slack.OAuthOptionAPIURL(c.apiURL))
	if err != nil {
		return app.Tokens{}, classify(err)
	}
	t := app.Tokens{AccessToken: resp.AccessToken, RefreshToken: resp.RefreshToken}
	if resp.ExpiresIn > 0 {
		t.ExpiresAt = c.now().Add(time.Duration(resp.ExpiresIn) * time.Second)
	}
	return t, nil
}

func (c *Client) api(token string) *slack.Client {
	return slack.New(token, slack.OptionAPIURL(c.apiURL), slack.OptionHTTPClient(c.http))
}

// IsMember reports whether email is an active person of the token's team.
func (c *Client) IsMember(ctx context.Context, botToken, email string) (bool, error) {
	u, err := c.api(botToken).GetUserByEmailContext(ctx, email)
	if err != nil {
		var se slack.SlackErrorResponse
		if errors.As(err, &se) && se.Err == "users_not_found" {
			return false, nil
		}
		return false, classify(err)
	}
	return !u.Deleted && !u.IsBot, nil
}

// AuthTest checks that a token works.
func (c *Client) AuthTest(ctx context.Context, botToken string) error {
	_, err := c.api(botToken).AuthTestContext(ctx)
	return classify(err)
}

// Revoke revokes a token (auth.revoke).
func (c *Client) Revoke(ctx context.Context, token string) error {
	_, err := c.api(token).SendAuthRevokeContext(ctx, token)
	return classify(err)
}

// UserInfo returns a user of the token's team.
func (c *Client) UserInfo(ctx context.Context, botToken, userID string) (app.SlackUser, bool, error) {
	u, err := c.api(botToken).GetUserInfoContext(ctx, userID)
	if err != nil {
		var se slack.SlackErrorResponse
		if errors.As(err, &se) && se.Err == "user_not_found" {
			return app.SlackUser{}, false, nil
		}
		return app.SlackUser{}, false, classify(err)
	}
	return app.SlackUser{Email: u.Profile.Email, RealName: u.RealName, Deleted: u.Deleted}, true, nil
}

// pageSize is the page size of the list methods: Slack recommends no more
// than 200.
const pageSize = 200

// maxListed bounds a listing, so a huge workspace cannot exhaust memory.
const maxListed = 100_000

// maxRateLimitWait is the longest one Retry-After is waited out; longer
// means the listing fails and the caller may come back later.
const maxRateLimitWait = 30 * time.Second

// waitRateLimit waits out a rate limit and reports whether to try again.
func waitRateLimit(ctx context.Context, err error) bool {
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter > maxRateLimitWait {
		return false
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(rl.RetryAfter):
		return true
	}
}

// Channels lists public channels and the private ones the bot is in.
func (c *Client) Channels(ctx context.Context, botToken string) ([]app.SlackChannel, error) {
	api := c.api(botToken)
	var out []app.SlackChannel
	cursor := ""
	for {
		page, next, err := api.GetConversationsContext(ctx, &slack.GetConversationsParameters{
			Types: []string{"public_channel", "private_channel"}, Limit: pageSize, Cursor: cursor,
		})
		if err != nil {
			if waitRateLimit(ctx, err) {
				continue
			}
			return nil, classify(err)
		}
		for _, ch := range page {
			out = append(out, app.SlackChannel{
				ID: ch.ID, Name: ch.Name, Private: ch.IsPrivate, Member: ch.IsMember, Archived: ch.IsArchived,
			})
		}
		if next == "" || len(out) >= maxListed {
			return out, nil
		}
		cursor = next
	}
}

// Users lists the team's members.
func (c *Client) Users(ctx context.Context, botToken string) ([]app.SlackMember, error) {
	p := c.api(botToken).GetUsersPaginated(slack.GetUsersOptionLimit(pageSize))
	var out []app.SlackMember
	for len(out) < maxListed {
		next, err := p.Next(ctx)
		if err != nil {
			if p.Done(err) {
				return out, nil
			}
			if waitRateLimit(ctx, err) {
				continue
			}
			return nil, classify(err)
		}
		p = next
		for _, u := range p.Users {
			out = append(out, app.SlackMember{
				ID: u.ID, Name: u.Name, RealName: u.RealName, Email: u.Profile.Email,
				Deleted: u.Deleted, Bot: u.IsBot || u.IsAppUser,
			})
		}
	}
	return out, nil
}
