package slackstandin

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/slack-go/slack"
)

// shareAnswer is what a /zcrm app answers: an ephemeral message with a
// record and its "Share this record" button.
const shareAnswer = `{"response_type":"ephemeral","text":"1 lead","blocks":[` +
	`{"type":"section","text":{"type":"mrkdwn","text":"*Emma Watson*"}},` +
	`{"type":"actions","block_id":"rec1","elements":[{"type":"button","action_id":"card_share","text":{"type":"plain_text","text":"Share this record"},"value":"{\"o\":\"acme\",\"m\":\"Leads\",\"i\":\"l1\"}"}]}]}`

// zcrmApp is a fake app that verifies signatures with slack-go and
// answers slash commands with shareAnswer and clicks with an empty 200.
func zcrmApp(tb testing.TB) (string, <-chan received) {
	tb.Helper()
	return fakeApp(tb, "standin-signing-secret", func(w http.ResponseWriter, body []byte) {
		if formValue(tb, body, "command") != "" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, shareAnswer)
		}
	})
}

// act posts to a /_standin/ endpoint: a form when body is url.Values, else
// JSON.
func act(tb testing.TB, srv *Server, path string, body any) apiAnswer {
	tb.Helper()
	var raw []byte
	ct := "application/x-www-form-urlencoded"
	switch b := body.(type) {
	case url.Values:
		raw = []byte(b.Encode())
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			tb.Fatal(err)
		}
		ct = "application/json"
	}
	req, err := http.NewRequestWithContext(testContext(tb), http.MethodPost, srv.URL()+path, bytes.NewReader(raw))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", ct)
	return do(tb, req)
}

func TestActSlashResolvesNamesAndRelaysTheAnswer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                string
		body                any
		team, channel, user string
		command             string
	}{
		{"form with an email and a channel name", url.Values{"user": {"bob@acme.example"}, "channel": {"sales"}, "text": {"leads [last name]=[watson]"}},
			acme, sales, bob, "/zcrm"},
		{"JSON with names", ActRequest{Team: "acme-corp", User: "@Bob", Channel: "#sales", Text: "leads [last name]=[watson]"},
			acme, sales, bob, "/zcrm"},
		{"ids and another command", ActRequest{Team: acme, User: bob, Channel: sales, Command: "crm", Text: "leads [last name]=[watson]"},
			acme, sales, bob, "/crm"},
		{"team found from the user", url.Values{"user": {"ivy"}, "channel": {"general"}, "text": {"leads [last name]=[watson]"}},
			globex, globexGnrl, ivy, "/zcrm"},
		{"team by name", ActRequest{Team: "Globex", User: "ivy@GLOBEX.example", Channel: globexGnrl, Text: "leads [last name]=[watson]"},
			globex, globexGnrl, ivy, "/zcrm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			appURL, got := zcrmApp(t)
			srv := startServer(t, Config{AppURL: appURL + "/", RateLimits: RateLimits{Disabled: true}})

			a := act(t, srv, "/_standin/slash", tt.body)
			wantOK(t, a)
			r := <-got
			if r.path != AppPathCommands {
				t.Fatalf("sent to %s, want %s", r.path, AppPathCommands)
			}
			req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(r.body))
			req.Header = r.header
			cmd, err := slack.SlashCommandParse(req)
			if err != nil {
				t.Fatalf("slack-go cannot parse the command: %v", err)
			}
			if cmd.TeamID != tt.team || cmd.ChannelID != tt.channel || cmd.UserID != tt.user || cmd.Command != tt.command ||
				cmd.Text != "leads [last name]=[watson]" || cmd.ResponseURL != a.body["response_url"] || cmd.TriggerID != a.body["trigger_id"] {
				t.Fatalf("command %+v\nresult %v", cmd, a.body)
			}
			if a.body["status"] != float64(http.StatusOK) || a.body["team"] != tt.team || a.body["channel"] != tt.channel || a.body["user"] != tt.user {
				t.Fatalf("result %v", a.body)
			}
			if ms, ok := a.body["took_ms"].(float64); !ok || ms < 0 {
				t.Fatalf("took_ms %v", a.body["took_ms"])
			}
			var want, gotBody any
			_ = json.Unmarshal([]byte(shareAnswer), &want)
			raw, _ := json.Marshal(a.body["body"])
			_ = json.Unmarshal(raw, &gotBody)
			if !jsonEqual(want, gotBody) {
				t.Fatalf("body %s, want the app's JSON answer parsed", raw)
			}
		})
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestActSlashThenResponseURLThenClick(t *testing.T) {
	t.Parallel()
	appURL, got := zcrmApp(t)
	srv := startServer(t, Config{AppURL: appURL, RateLimits: RateLimits{Disabled: true}})

	a := act(t, srv, "/_standin/slash", url.Values{"user": {"bob@acme.example"}, "channel": {"sales"}, "text": {"leads watson"}})
	wantOK(t, a)
	<-got
	responseURL := a.body["response_url"].(string)
	if !strings.HasPrefix(responseURL, srv.URL()+"/commands/"+acme+"/") {
		t.Fatalf("response_url %q is not the stand-in's", responseURL)
	}

	// A later answer through the response_url shows in GET /_standin/messages.
	wantOK(t, postJSONTo(t, responseURL, map[string]any{"text": "late answer"}))
	req, _ := http.NewRequestWithContext(testContext(t), http.MethodGet, srv.URL()+"/_standin/messages?kind=response_url&channel="+sales, nil)
	m := do(t, req)
	msgs, _ := m.body["messages"].([]any)
	if len(msgs) != 1 || msgs[0].(map[string]any)["text"] != "late answer" || msgs[0].(map[string]any)["user"] != bob {
		t.Fatalf("messages %v", m.body)
	}

	// Click the Share button of the answer: the response_url supplies who
	// and where.
	var answer slack.Msg
	raw, _ := json.Marshal(a.body["body"])
	if err := json.Unmarshal(raw, &answer); err != nil {
		t.Fatal(err)
	}
	button := answer.Blocks.BlockSet[1].(*slack.ActionBlock).Elements.ElementSet[0].(*slack.ButtonBlockElement)
	c := act(t, srv, "/_standin/click", ActRequest{ResponseURL: responseURL, ActionID: button.ActionID, Value: button.Value, BlockID: "rec1", Label: button.Text.Text})
	wantOK(t, c)
	r := <-got
	if r.path != AppPathInteractions {
		t.Fatalf("sent to %s, want %s", r.path, AppPathInteractions)
	}
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(formValue(t, r.body, "payload")), &cb); err != nil {
		t.Fatalf("slack-go cannot decode the payload: %v", err)
	}
	acts := cb.ActionCallback.BlockActions
	if cb.Type != slack.InteractionTypeBlockActions || cb.User.ID != bob || cb.Team.ID != acme || cb.Channel.ID != sales ||
		!cb.Container.IsEphemeral || len(acts) != 1 || acts[0].ActionID != "card_share" || acts[0].BlockID != "rec1" ||
		acts[0].Value != `{"o":"acme","m":"Leads","i":"l1"}` || acts[0].Text.Text != "Share this record" {
		t.Fatalf("callback %+v", cb)
	}
	if cb.ResponseURL != c.body["response_url"] || cb.ResponseURL == responseURL {
		t.Fatalf("the click carries a fresh response_url: payload %q, result %v, answer's %q", cb.ResponseURL, c.body["response_url"], responseURL)
	}
	if c.body["status"] != float64(http.StatusOK) || c.body["body"] != "" {
		t.Fatalf("result %v", c.body)
	}
}

func TestActReportsTheAppsRefusal(t *testing.T) {
	t.Parallel()
	// The app has another secret: its 401 is reported, not hidden.
	appURL, _ := fakeApp(t, "the-apps-own-secret", ok200)
	srv := startServer(t, Config{AppURL: appURL})
	a := act(t, srv, "/_standin/slash", url.Values{"user": {"alice"}, "channel": {"general"}, "text": {"help"}})
	wantOK(t, a)
	if a.body["status"] != float64(http.StatusUnauthorized) || !strings.Contains(a.body["body"].(string), "signature") {
		t.Fatalf("result %v", a.body)
	}
}

func TestActRefusals(t *testing.T) {
	t.Parallel()
	appURL, got := zcrmApp(t)
	srv := startServer(t, Config{AppURL: appURL})
	noApp := startServer(t, Config{})
	deadApp := httptest.NewServer(http.NotFoundHandler())
	deadApp.Close()
	unreachable := startServer(t, Config{AppURL: deadApp.URL})
	minted := srv.NewResponseURL(acme, sales, bob)
	mintedID := minted[strings.LastIndex(minted, "/")+1:]

	form := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	tests := []struct {
		name   string
		srv    *Server
		path   string
		body   any
		status int
		code   string
	}{
		{"no app configured", noApp, "/_standin/slash", form("user", "bob", "channel", "sales"), http.StatusServiceUnavailable, "app_url_not_configured"},
		{"no app configured for clicks", noApp, "/_standin/click", form("user", "bob", "channel", "sales", "action_id", "a"), http.StatusServiceUnavailable, "app_url_not_configured"},
		{"app unreachable", unreachable, "/_standin/slash", form("user", "bob", "channel", "sales"), http.StatusBadGateway, "app_unreachable"},
		{"no user", srv, "/_standin/slash", form("channel", "sales"), http.StatusBadRequest, "missing_user"},
		{"no channel", srv, "/_standin/slash", form("user", "bob"), http.StatusBadRequest, "missing_channel"},
		{"unknown team", srv, "/_standin/slash", form("team", "T0NOPE", "user", "bob", "channel", "sales"), http.StatusNotFound, "unknown_team"},
		{"unknown user", srv, "/_standin/slash", form("user", "nobody@acme.example", "channel", "sales"), http.StatusNotFound, "unknown_user"},
		{"user of another team", srv, "/_standin/slash", form("team", acme, "user", ivy, "channel", "general"), http.StatusNotFound, "unknown_user"},
		{"unknown channel", srv, "/_standin/slash", form("user", "bob", "channel", "nope"), http.StatusNotFound, "unknown_channel"},
		{"channel of another team", srv, "/_standin/slash", form("user", "bob", "channel", globexGnrl), http.StatusNotFound, "unknown_channel"},
		{"private channel of others", srv, "/_standin/slash", form("user", "bob", "channel", "exec"), http.StatusNotFound, "unknown_channel"},
		{"archived channel", srv, "/_standin/slash", form("user", "bob", "channel", "old-pipeline"), http.StatusBadRequest, "is_archived"},
		{"deactivated user", srv, "/_standin/slash", form("user", "frank", "channel", "general"), http.StatusBadRequest, "user_is_deactivated"},
		{"bot user", srv, "/_standin/slash", form("user", acmeBot, "channel", "general"), http.StatusBadRequest, "user_is_bot"},
		{"unknown JSON field", srv, "/_standin/slash", map[string]string{"user": "bob", "chanel": "sales"}, http.StatusBadRequest, "invalid_json"},
		{"click without action_id", srv, "/_standin/click", form("user", "bob", "channel", "sales"), http.StatusBadRequest, "missing_action_id"},
		{"click with a foreign response_url", srv, "/_standin/click", form("action_id", "a", "response_url", "https://hooks.slack.com/commands/T1/1/x"), http.StatusNotFound, "unknown_response_url"},
		{"click with an unknown response_url id", srv, "/_standin/click", form("action_id", "a", "response_url", srv.URL()+"/commands/"+acme+"/1/x"+mintedID), http.StatusNotFound, "unknown_response_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := act(t, tt.srv, tt.path, tt.body)
			if a.status != tt.status || a.body["ok"] != false || a.errorCode() != tt.code || a.body["detail"] == "" {
				t.Fatalf("got HTTP %d %v, want %d %s", a.status, a.body, tt.status, tt.code)
			}
		})
	}
	t.Cleanup(func() {
		select {
		case r := <-got:
			t.Errorf("a refused request reached the app: %s %s", r.path, r.body)
		default:
		}
	})
}
