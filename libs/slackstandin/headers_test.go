package slackstandin

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestRepliesCarrySlacksHeaders: a Web API reply carries Slack's request id
// and the scopes the token holds and the method accepts.
func TestRepliesCarrySlacksHeaders(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	form := url.Values{"channel": {sales}, "text": {"hello"}}
	req, err := http.NewRequestWithContext(testContext(t), http.MethodPost, srv.URL()+"/api/chat.postMessage", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+srv.IssueBotToken(acme))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if id := resp.Header.Get("X-Slack-Req-Id"); len(id) != 32 {
		t.Errorf("X-Slack-Req-Id %q", id)
	}
	if got := resp.Header.Get("X-Accepted-Oauth-Scopes"); got != "chat:write" {
		t.Errorf("X-Accepted-Oauth-Scopes %q, want chat:write", got)
	}
	if got := resp.Header.Get("X-Oauth-Scopes"); !strings.Contains(got, "chat:write") {
		t.Errorf("X-Oauth-Scopes %q, want the token's scopes", got)
	}
}
