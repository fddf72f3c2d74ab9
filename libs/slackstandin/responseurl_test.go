package slackstandin

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/crmslack/crmslack/libs/blockkit"
)

func TestResponseURLUseLimit(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	u := srv.NewResponseURL(acme, sales, alice)
	if !strings.HasPrefix(u, srv.URL()+"/commands/"+acme+"/") {
		t.Fatalf("minted %q", u)
	}
	for i := range responseURLUses {
		wantOK(t, postJSONTo(t, u, map[string]any{"text": "update " + string(rune('1'+i))}))
	}
	a := postJSONTo(t, u, map[string]any{"text": "one too many"})
	if a.status != http.StatusNotFound || a.errorCode() != "used_url" {
		t.Fatalf("sixth use: HTTP %d %v", a.status, a.body)
	}
	if n := len(srv.Messages(MessageFilter{Kind: KindResponseURL})); n != responseURLUses {
		t.Fatalf("recorded %d", n)
	}
}

func TestResponseURLExpiry(t *testing.T) {
	t.Parallel()
	srv, clock := startQuiet(t)
	u := srv.NewResponseURL(acme, sales, alice)
	clock.Advance(responseURLLifetime - time.Second)
	wantOK(t, postJSONTo(t, u, map[string]any{"text": "just in time"}))
	clock.Advance(time.Second)
	a := postJSONTo(t, u, map[string]any{"text": "too late"})
	if a.status != http.StatusNotFound || a.errorCode() != "expired_url" {
		t.Fatalf("after 30 minutes: HTTP %d %v", a.status, a.body)
	}
}

func TestResponseURLRefusals(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	tests := []struct {
		name string
		body any
		want string
	}{
		{"no text", map[string]any{"response_type": "in_channel"}, "no_text"},
		{"invalid blocks", map[string]any{"blocks": []any{map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": strings.Repeat("a", 3001)}}}}, "invalid_blocks"},
		{"text too long", map[string]any{"text": strings.Repeat("a", blockkit.MaxMessageText+1)}, "msg_too_long"},
		{"not JSON", "text=hello", "invalid_payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			u := srv.NewResponseURL(acme, sales, alice)
			a := postJSONTo(t, u, tt.body)
			if a.status != http.StatusBadRequest || a.errorCode() != tt.want {
				t.Fatalf("HTTP %d %v, want 400 %s", a.status, a.body, tt.want)
			}
			// A refused post does not use the URL up.
			for range responseURLUses {
				wantOK(t, postJSONTo(t, u, map[string]any{"text": "fine"}))
			}
		})
	}
}

func TestResponseURLWithSlackGo(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	api := slackClient(t, srv, srv.IssueBotToken(acme))
	u := srv.NewResponseURL(acme, general, bob)
	if _, _, err := api.PostMessageContext(testContext(t), "", slack.MsgOptionResponseURL(u, slack.ResponseTypeInChannel), slack.MsgOptionText("Deal 7 moved to Won", false)); err != nil {
		t.Fatal(err)
	}
	msgs, err := srv.WaitForMessages(testContext(t), 1, MessageFilter{Kind: KindResponseURL, User: bob})
	if err != nil {
		t.Fatal(err)
	}
	if m := msgs[0]; m.Channel != general || m.ResponseType != "in_channel" || m.Text != "Deal 7 moved to Won" || m.Author != acmeBot {
		t.Fatalf("recorded %+v", m)
	}
}

func TestResponseURLDeleteOriginal(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	api := slackClient(t, srv, srv.IssueBotToken(acme))
	_, ts, err := api.PostMessageContext(testContext(t), sales, slack.MsgOptionText("Approve?", false))
	if err != nil {
		t.Fatal(err)
	}
	appURL, _ := fakeApp(t, "standin-signing-secret", ok200)
	d, err := srv.NewSender(nil).BlockAction(testContext(t), appURL, BlockAction{TeamID: acme, ChannelID: sales, UserID: bob, MessageTS: ts, ActionID: "no"})
	if err != nil {
		t.Fatal(err)
	}
	wantOK(t, postJSONTo(t, d.ResponseURL, map[string]any{"delete_original": "true"}))
	if _, _, _, err := api.UpdateMessageContext(testContext(t), sales, ts, slack.MsgOptionText("x", false)); slackErr(t, err) != "message_not_found" {
		t.Fatalf("a deleted message is gone: %v", err)
	}
}

// Response URLs have hooks.slack.com's paths: /commands/… for a slash
// command, /actions/… for a click.
func TestResponseURLsHaveSlacksPaths(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	appURL, _ := fakeApp(t, "standin-signing-secret", ok200)
	sd := srv.NewSender(nil)
	cmd, err := sd.SlashCommand(testContext(t), appURL, SlashCommand{TeamID: acme, ChannelID: sales, UserID: alice, Command: "/crm", Text: "x"})
	if err != nil {
		t.Fatal(err)
	}
	click, err := sd.BlockAction(testContext(t), appURL, BlockAction{TeamID: acme, ChannelID: sales, UserID: alice, Ephemeral: true, ActionID: "a", Value: "v"})
	if err != nil {
		t.Fatal(err)
	}
	for u, prefix := range map[string]string{cmd.ResponseURL: "/commands/" + acme + "/", click.ResponseURL: "/actions/" + acme + "/"} {
		if !strings.HasPrefix(u, srv.URL()+prefix) {
			t.Errorf("response_url %q, want the prefix %s", u, prefix)
		}
		wantOK(t, postJSONTo(t, u, map[string]any{"text": "answered"}))
	}
}
