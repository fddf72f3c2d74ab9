package slackstandin

import (
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
)

// A stand-in restarted on its state file is the Slack it was: tokens,
// channels opened, messages, response URLs and statistics-free state are
// back, so an app's stored tokens keep working.
func TestStateSurvivesARestart(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "standin.json")
	cfg := Config{StateFile: path, RateLimits: RateLimits{Disabled: true}}
	first, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	tok := first.IssueBotToken(acme)
	wantOK(t, callForm(t, first, "chat.postMessage", tok, url.Values{"channel": {sales}, "text": {"before the restart"}}))
	dm := callForm(t, first, "conversations.open", tok, url.Values{"users": {alice}})
	wantOK(t, dm)
	dmID := dm.body["channel"].(map[string]any)["id"].(string)
	ru := first.NewResponseURL(acme, sales, alice)
	revoked := first.IssueBotToken(globex)
	first.RevokeTeam(globex)
	addr := first.URL()
	first.Close()
	// The client's kept-alive connections were to the first server; a POST
	// on one it has not yet seen closed fails with EOF (POSTs are not
	// retried), so they are dropped here.
	http.DefaultClient.CloseIdleConnections()

	second, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Start(addr[len("http://"):]); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(second.Close)
	wantOK(t, callForm(t, second, "auth.test", tok, nil))
	wantError(t, callForm(t, second, "auth.test", revoked, nil), "token_revoked")
	h := callForm(t, second, "conversations.history", tok, url.Values{"channel": {sales}})
	wantOK(t, h)
	if msgs := h.body["messages"].([]any); len(msgs) == 0 || msgs[0].(map[string]any)["text"] != "before the restart" {
		t.Fatalf("history after the restart: %v", h.body["messages"])
	}
	again := callForm(t, second, "conversations.open", tok, url.Values{"users": {alice}})
	if wantOK(t, again); again.body["channel"].(map[string]any)["id"] != dmID {
		t.Fatalf("the DM changed id: %v, was %s", again.body["channel"], dmID)
	}
	wantOK(t, postJSONTo(t, ru, map[string]any{"text": "after the restart"}))
	if got := second.Messages(MessageFilter{Channel: sales}); len(got) != 2 {
		t.Fatalf("recorded messages after the restart: %+v", got)
	}
}

// Recorded messages and channel histories are bounded by MaxMessages.
func TestRecordedMessagesAreBounded(t *testing.T) {
	t.Parallel()
	srv := startServer(t, Config{MaxMessages: 3, RateLimits: RateLimits{Disabled: true}})
	tok := srv.IssueBotToken(acme)
	for _, text := range []string{"1", "2", "3", "4", "5"} {
		wantOK(t, callForm(t, srv, "chat.postMessage", tok, url.Values{"channel": {sales}, "text": {text}}))
	}
	got := srv.Messages(MessageFilter{})
	if len(got) != 3 || got[0].Text != "3" || got[2].Text != "5" {
		t.Fatalf("recorded %+v, want the newest three", got)
	}
	h := callForm(t, srv, "conversations.history", tok, url.Values{"channel": {sales}})
	if wantOK(t, h); len(h.body["messages"].([]any)) != 3 {
		t.Fatalf("history holds %d", len(h.body["messages"].([]any)))
	}
}
