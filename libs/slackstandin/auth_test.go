package slackstandin

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/slack-go/slack"
)

func TestAuthTestWithSlackGo(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	tests := []struct {
		team string
		want slack.AuthTestResponse
	}{
		{acme, slack.AuthTestResponse{URL: "https://acme-corp.slack.com/", Team: "Acme Corp", User: "crmslack", TeamID: acme, UserID: acmeBot, BotID: "B0ACMEBOT1"}},
		{globex, slack.AuthTestResponse{URL: "https://globex.slack.com/", Team: "Globex", User: "crmslack", TeamID: globex, UserID: "U0GLBXBOT1", BotID: "B0GLBXBOT1", EnterpriseID: "E0GLBXHOLD"}},
	}
	for _, tt := range tests {
		t.Run(tt.team, func(t *testing.T) {
			t.Parallel()
			got, err := slackClient(t, srv, srv.IssueBotToken(tt.team)).AuthTestContext(testContext(t))
			if err != nil {
				t.Fatal(err)
			}
			if got.Header.Get("Content-Type") == "" {
				t.Fatal("slack-go passes the answer's headers on")
			}
			got.Header = nil
			if !reflect.DeepEqual(*got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestTokenStates(t *testing.T) {
	t.Parallel()
	seed := DefaultSeed()
	seed.Workspaces[1].Inactive = true
	srv := startServer(t, Config{Seed: seed, RateLimits: RateLimits{Disabled: true}})
	revokedByTeam := srv.IssueBotToken(acme)
	srv.RevokeTeam(acme)
	revokedSelf := srv.IssueBotToken(acme) // issued after the uninstall: valid
	wantOK(t, callForm(t, srv, "auth.revoke", revokedSelf, nil))

	tests := []struct {
		name, token, want string
	}{
		{"missing", "", "not_authed"},
		{"unknown", "xoxb-0-0-unknown", "invalid_auth"},
		{"team uninstalled", revokedByTeam, "token_revoked"},
		{"auth.revoke", revokedSelf, "token_revoked"},
		{"inactive workspace", srv.IssueBotToken(globex), "account_inactive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantError(t, callForm(t, srv, "auth.test", tt.token, nil), tt.want)
		})
	}
}

func TestAuthRevokeTestMode(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	tok := srv.IssueBotToken(acme)
	a := callForm(t, srv, "auth.revoke", tok, url.Values{"test": {"true"}})
	wantOK(t, a)
	if a.body["revoked"] != false {
		t.Fatalf("test mode revokes nothing: %v", a.body)
	}
	wantOK(t, callForm(t, srv, "auth.test", tok, nil))
}

func TestAppsUninstall(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	tok := srv.IssueBotToken(acme)
	other := srv.IssueBotToken(acme)
	wantError(t, callForm(t, srv, "apps.uninstall", tok, url.Values{"client_id": {"1234567890.1234567890"}, "client_secret": {"nope"}}), "bad_client_secret")
	wantError(t, callForm(t, srv, "apps.uninstall", tok, url.Values{"client_id": {"nope"}}), "invalid_client_id")
	wantOK(t, callForm(t, srv, "apps.uninstall", tok, url.Values{"client_id": {"1234567890.1234567890"}, "client_secret": {"standin-client-secret"}}))
	wantError(t, callForm(t, srv, "auth.test", other, nil), "token_revoked")
	wantOK(t, callForm(t, srv, "auth.test", srv.IssueBotToken(globex), nil))
}

func TestRequestShapes(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	tok := srv.IssueBotToken(acme)

	t.Run("bearer header with a form", func(t *testing.T) {
		t.Parallel()
		req, _ := http.NewRequestWithContext(testContext(t), http.MethodPost, srv.URL()+"/api/auth.test", strings.NewReader(""))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		wantOK(t, do(t, req))
	})
	t.Run("GET with query arguments", func(t *testing.T) {
		t.Parallel()
		req, _ := http.NewRequestWithContext(testContext(t), http.MethodGet, srv.URL()+"/api/users.info?"+url.Values{"token": {tok}, "user": {alice}}.Encode(), nil)
		wantOK(t, do(t, req))
	})
	t.Run("malformed JSON", func(t *testing.T) {
		t.Parallel()
		req, _ := http.NewRequestWithContext(testContext(t), http.MethodPost, srv.URL()+"/api/auth.test", strings.NewReader("{nope"))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		wantError(t, do(t, req), "invalid_json")
	})
	t.Run("unknown method", func(t *testing.T) {
		t.Parallel()
		wantError(t, callForm(t, srv, "chat.meh", tok, nil), "unknown_method")
	})
	t.Run("answers carry a JSON content type", func(t *testing.T) {
		t.Parallel()
		a := callForm(t, srv, "auth.test", tok, nil)
		if ct := a.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Fatalf("content type %q", ct)
		}
	})
}

func TestIssueBotTokenUnknownTeamPanics(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	defer func() {
		if recover() == nil {
			t.Fatal("want a panic for an unknown team")
		}
	}()
	srv.IssueBotToken("T0NOPE")
}
