package slackstandin

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

const (
	clientID     = "1234567890.1234567890"
	clientSecret = "standin-client-secret"
	redirectURI  = "https://crm.example/slack/oauth/callback"
)

// authorize opens the authorize page like a browser and returns where it
// redirects to.
func authorize(tb testing.TB, srv *Server, q url.Values) (int, *url.URL) {
	tb.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequestWithContext(testContext(tb), http.MethodGet, srv.URL()+"/oauth/v2/authorize?"+q.Encode(), nil)
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	return resp.StatusCode, loc
}

// installCode runs the consent page and returns the code.
func installCode(tb testing.TB, srv *Server, team string) string {
	tb.Helper()
	status, loc := authorize(tb, srv, url.Values{
		"client_id": {clientID}, "scope": {"chat:write,users:read"}, "redirect_uri": {redirectURI}, "state": {"xyz"}, "team": {team},
	})
	if status != http.StatusFound || loc.Query().Get("state") != "xyz" || loc.Query().Get("code") == "" {
		tb.Fatalf("authorize: HTTP %d to %v", status, loc)
	}
	return loc.Query().Get("code")
}

func oauthOpt(srv *Server) slack.OAuthOption { return slack.OAuthOptionAPIURL(srv.URL() + "/api/") }

func TestOAuthCodeFlowWithSlackGo(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	code := installCode(t, srv, globex)
	resp, err := slack.GetOAuthV2ResponseContext(testContext(t), http.DefaultClient, clientID, clientSecret, code, redirectURI, oauthOpt(srv))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resp.AccessToken, "xoxb-") || resp.TokenType != "bot" || resp.Scope != "chat:write,users:read" ||
		resp.BotUserID != "U0GLBXBOT1" || resp.AppID != "A0CRMSLACK1" || resp.Team.ID != globex || resp.Team.Name != "Globex" ||
		resp.Enterprise.ID != "E0GLBXHOLD" || resp.IsEnterpriseInstall || resp.AuthedUser.ID != "U0GLBX0HNK" ||
		resp.RefreshToken != "" || resp.ExpiresIn != 0 {
		t.Fatalf("response %+v", resp)
	}
	at, err := slackClient(t, srv, resp.AccessToken).AuthTestContext(testContext(t))
	if err != nil || at.TeamID != globex {
		t.Fatalf("the token is bound to the team: %+v %v", at, err)
	}
	_, err = slack.GetOAuthV2ResponseContext(testContext(t), http.DefaultClient, clientID, clientSecret, code, redirectURI, oauthOpt(srv))
	if got := slackErr(t, err); got != "invalid_code" {
		t.Fatalf("a code is one-time: %q", got)
	}
}

func TestOAuthV2ResponseShape(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	code := installCode(t, srv, acme)
	a := callForm(t, srv, "oauth.v2.access", "", url.Values{"client_id": {clientID}, "client_secret": {clientSecret}, "code": {code}, "redirect_uri": {redirectURI}})
	wantOK(t, a)
	if v, present := a.body["enterprise"]; !present || v != nil {
		t.Fatalf("enterprise must be null for a plain workspace: %v", a.body)
	}
	if a.body["is_enterprise_install"] != false || a.body["token_type"] != "bot" || a.body["bot_user_id"] != acmeBot ||
		a.body["authed_user"].(map[string]any)["id"] != alice || a.body["team"].(map[string]any)["id"] != acme {
		t.Fatalf("shape %v", a.body)
	}
}

func TestOAuthUserScopes(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	_, loc := authorize(t, srv, url.Values{"client_id": {clientID}, "user_scope": {"identity.basic"}, "redirect_uri": {redirectURI}, "user": {carol}})
	resp, err := slack.GetOAuthV2ResponseContext(testContext(t), http.DefaultClient, clientID, clientSecret, loc.Query().Get("code"), redirectURI, oauthOpt(srv))
	if err != nil {
		t.Fatal(err)
	}
	if resp.AccessToken != "" || resp.AuthedUser.ID != carol || !strings.HasPrefix(resp.AuthedUser.AccessToken, "xoxp-") ||
		resp.AuthedUser.TokenType != "user" || resp.AuthedUser.Scope != "identity.basic" {
		t.Fatalf("response %+v", resp)
	}
}

func TestOAuthExchangeErrors(t *testing.T) {
	t.Parallel()
	srv, clock := startQuiet(t)
	expired := installCode(t, srv, acme)
	clock.Advance(codeLifetime + time.Second)
	tests := []struct {
		name           string
		id, secret     string
		code, redirect string
		want           string
	}{
		{"unknown client", "nope", clientSecret, installCode(t, srv, acme), redirectURI, "invalid_client_id"},
		{"bad secret", clientID, "nope", installCode(t, srv, acme), redirectURI, "bad_client_secret"},
		{"unknown code", clientID, clientSecret, "123.456.abc", redirectURI, "invalid_code"},
		{"expired code", clientID, clientSecret, expired, redirectURI, "invalid_code"},
		{"other redirect_uri", clientID, clientSecret, installCode(t, srv, acme), "https://evil.example/cb", "bad_redirect_uri"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := slack.GetOAuthV2ResponseContext(testContext(t), http.DefaultClient, tt.id, tt.secret, tt.code, tt.redirect, oauthOpt(srv))
			if got := slackErr(t, err); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("unknown grant type", func(t *testing.T) {
		t.Parallel()
		wantError(t, callForm(t, srv, "oauth.v2.access", "", url.Values{"client_id": {clientID}, "client_secret": {clientSecret}, "grant_type": {"password"}}), "invalid_grant_type")
	})
}

func TestOAuthBasicAuth(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	form := url.Values{"code": {installCode(t, srv, acme)}, "redirect_uri": {redirectURI}}
	req, _ := http.NewRequestWithContext(testContext(t), http.MethodPost, srv.URL()+"/api/oauth.v2.access", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, clientSecret)
	wantOK(t, do(t, req))
}

func TestOAuthAuthorizePage(t *testing.T) {
	t.Parallel()
	srv := startServer(t, Config{App: AppConfig{RedirectURLs: []string{"https://crm.example/"}}})
	tests := []struct {
		name       string
		q          url.Values
		wantStatus int
		wantError  string // error= in the redirect
	}{
		{"allow", url.Values{"client_id": {clientID}, "redirect_uri": {redirectURI}}, http.StatusFound, ""},
		{"deny", url.Values{"client_id": {clientID}, "redirect_uri": {redirectURI}, "state": {"s1"}, "deny": {"1"}}, http.StatusFound, "access_denied"},
		{"unknown client", url.Values{"client_id": {"nope"}, "redirect_uri": {redirectURI}}, http.StatusBadRequest, ""},
		{"no redirect_uri", url.Values{"client_id": {clientID}}, http.StatusBadRequest, ""},
		{"redirect_uri not configured", url.Values{"client_id": {clientID}, "redirect_uri": {"https://evil.example/cb"}}, http.StatusBadRequest, ""},
		{"unknown team", url.Values{"client_id": {clientID}, "redirect_uri": {redirectURI}, "team": {"T0NOPE"}}, http.StatusBadRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, loc := authorize(t, srv, tt.q)
			if status != tt.wantStatus {
				t.Fatalf("HTTP %d, want %d", status, tt.wantStatus)
			}
			if status != http.StatusFound {
				return
			}
			q := loc.Query()
			if got := q.Get("error"); got != tt.wantError {
				t.Fatalf("error=%q, want %q", got, tt.wantError)
			}
			if (q.Get("code") == "") == (tt.wantError == "") || q.Get("state") != tt.q.Get("state") {
				t.Fatalf("redirect %v", loc)
			}
		})
	}
}

func TestOAuthTokenRotation(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	srv := startServer(t, Config{Now: clock.Now, App: AppConfig{TokenRotation: true}, RateLimits: RateLimits{Disabled: true}})
	resp, err := slack.GetOAuthV2ResponseContext(testContext(t), http.DefaultClient, clientID, clientSecret, installCode(t, srv, acme), redirectURI, oauthOpt(srv))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resp.AccessToken, "xoxe.xoxb-1-") || !strings.HasPrefix(resp.RefreshToken, "xoxe-1-") || resp.ExpiresIn != 43200 {
		t.Fatalf("rotating response %+v", resp)
	}
	old := slackClient(t, srv, resp.AccessToken)
	if _, err := old.AuthTestContext(testContext(t)); err != nil {
		t.Fatal(err)
	}

	clock.Advance(12*time.Hour - time.Minute)
	fresh, err := slack.RefreshOAuthV2TokenContext(testContext(t), http.DefaultClient, clientID, clientSecret, resp.RefreshToken, oauthOpt(srv))
	if err != nil {
		t.Fatal(err)
	}
	if fresh.AccessToken == resp.AccessToken || fresh.RefreshToken == resp.RefreshToken || fresh.ExpiresIn != 43200 ||
		fresh.TokenType != "bot" || fresh.Team.ID != acme || fresh.BotUserID != acmeBot {
		t.Fatalf("refreshed %+v", fresh)
	}
	_, err = slack.RefreshOAuthV2TokenContext(testContext(t), http.DefaultClient, clientID, clientSecret, resp.RefreshToken, oauthOpt(srv))
	if got := slackErr(t, err); got != "invalid_refresh_token" {
		t.Fatalf("a refresh token is one-time: %q", got)
	}

	clock.Advance(time.Minute)
	if _, err := old.AuthTestContext(testContext(t)); slackErr(t, err) != "token_expired" {
		t.Fatalf("the old token expires on time: %v", err)
	}
	if _, err := slackClient(t, srv, fresh.AccessToken).AuthTestContext(testContext(t)); err != nil {
		t.Fatalf("the new token works: %v", err)
	}

	srv.RevokeTeam(acme)
	_, err = slack.RefreshOAuthV2TokenContext(testContext(t), http.DefaultClient, clientID, clientSecret, fresh.RefreshToken, oauthOpt(srv))
	if got := slackErr(t, err); got != "invalid_refresh_token" {
		t.Fatalf("uninstall kills refresh tokens: %q", got)
	}
}
