package slackstandin

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
)

func TestSignatureMatchesSlackDocumentedVector(t *testing.T) {
	t.Parallel()
	// The worked example of Slack's "Verifying requests from Slack".
	const (
		secret = "8f742231b10e8888abcd99yyyzzz85a5"
		ts     = "1531420618"
		body   = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
		want   = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
	)
	if got := Signature(secret, ts, []byte(body)); got != want {
		t.Fatalf("Signature = %s, want %s", got, want)
	}
}

func TestSignatureMatchesIndependentHMAC(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, secret, ts, body string
	}{
		{"form", "s3cret", "1700000000", "command=%2Fcrm&text=deal+42"},
		{"json", "another-secret", "1700000123", `{"type":"event_callback","event":{"type":"message"}}`},
		{"empty body", "x", "1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mac := hmac.New(sha256.New, []byte(tt.secret))
			mac.Write([]byte("v0:" + tt.ts + ":" + tt.body))
			want := "v0=" + hex.EncodeToString(mac.Sum(nil))
			if got := Signature(tt.secret, tt.ts, []byte(tt.body)); got != want {
				t.Fatalf("Signature = %s, want %s", got, want)
			}
		})
	}
}

func TestSignRequestAgainstSlackGoVerifier(t *testing.T) {
	t.Parallel()
	body := []byte("command=%2Fcrm&text=hello")
	tests := []struct {
		name       string
		signSecret string
		at         time.Time
		wantErr    error
	}{
		{"valid", "right", time.Now(), nil},
		{"wrong secret", "wrong", time.Now(), slack.ErrInvalidSignature},
		{"stale timestamp", "right", time.Now().Add(-10 * time.Minute), slack.ErrExpiredTimestamp},
		{"future timestamp", "right", time.Now().Add(10 * time.Minute), slack.ErrExpiredTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(http.MethodPost, "/slack/commands", nil)
			SignRequest(req, body, tt.signSecret, tt.at)
			if got := req.Header.Get("X-Slack-Request-Timestamp"); got != strconv.FormatInt(tt.at.Unix(), 10) {
				t.Fatalf("timestamp header %q", got)
			}
			if err := verifySlackRequest(req.Header, body, "right"); !errors.Is(err, tt.wantErr) {
				t.Fatalf("verify: got %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// verifySlackRequest verifies like an app using slack-go does.
func verifySlackRequest(h http.Header, body []byte, secret string) error {
	v, err := slack.NewSecretsVerifier(h, secret)
	if err != nil {
		return err
	}
	if _, err := v.Write(body); err != nil {
		return err
	}
	return v.Ensure()
}

// received is one request an app under test got.
type received struct {
	path   string
	header http.Header
	body   []byte
}

// fakeApp is an app endpoint that verifies signatures with slack-go,
// answers 401 when they are wrong, and hands every verified request to
// the test. answer writes the reply to verified requests.
func fakeApp(tb testing.TB, secret string, answer func(w http.ResponseWriter, body []byte)) (string, <-chan received) {
	tb.Helper()
	got := make(chan received, 16)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := verifySlackRequest(r.Header, body, secret); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		got <- received{path: r.URL.Path, header: r.Header.Clone(), body: body}
		answer(w, body)
	}))
	tb.Cleanup(app.Close)
	return app.URL, got
}

func ok200(w http.ResponseWriter, _ []byte) { w.WriteHeader(http.StatusOK) }

func TestSenderSlashCommand(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	appURL, got := fakeApp(t, "standin-signing-secret", ok200)
	sd := srv.NewSender(nil)

	d, err := sd.SlashCommand(testContext(t), appURL, SlashCommand{TeamID: globex, ChannelID: globexGnrl, UserID: ivy, Command: "/crm", Text: "deal 42"})
	if err != nil {
		t.Fatal(err)
	}
	if d.StatusCode != http.StatusOK || d.Duration <= 0 {
		t.Fatalf("delivery %+v", d)
	}
	r := <-got
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	req.Header = r.header
	req.Body = io.NopCloser(bytes.NewReader(r.body))
	cmd, err := slack.SlashCommandParse(req)
	if err != nil {
		t.Fatalf("slack-go cannot parse the command: %v", err)
	}
	want := slack.SlashCommand{
		Token: "standin-verification-token", TeamID: globex, TeamDomain: "globex",
		EnterpriseID: "E0GLBXHOLD", EnterpriseName: "Globex Holdings", ChannelID: globexGnrl, ChannelName: "general",
		UserID: ivy, UserName: "ivy", Command: "/crm", Text: "deal 42", ResponseURL: d.ResponseURL,
		TriggerID: d.TriggerID, APIAppID: "A0CRMSLACK1",
	}
	if cmd != want {
		t.Fatalf("command\n got %+v\nwant %+v", cmd, want)
	}

	// The app answers through the response_url it was given.
	wantOK(t, postJSONTo(t, cmd.ResponseURL, map[string]any{"text": "Deal 42: Initech, $120k", "response_type": "in_channel"}))
	msgs, err := srv.WaitForMessages(testContext(t), 1, MessageFilter{Kind: KindResponseURL, Channel: globexGnrl})
	if err != nil {
		t.Fatal(err)
	}
	if m := msgs[0]; m.User != ivy || m.Team != globex || m.ResponseType != "in_channel" || m.Text != "Deal 42: Initech, $120k" {
		t.Fatalf("recorded %+v", m)
	}
}

func TestSenderBlockAction(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	api := slackClient(t, srv, srv.IssueBotToken(acme))
	_, ts, err := api.PostMessageContext(testContext(t), sales, slack.MsgOptionText("Approve discount?", false),
		slack.MsgOptionBlocks(slack.NewActionBlock("approval", slack.NewButtonBlockElement("approve", "deal-42", slack.NewTextBlockObject(slack.PlainTextType, "Approve", false, false)))))
	if err != nil {
		t.Fatal(err)
	}
	appURL, got := fakeApp(t, "standin-signing-secret", ok200)

	d, err := srv.NewSender(nil).BlockAction(testContext(t), appURL, BlockAction{
		TeamID: acme, ChannelID: sales, UserID: alice, MessageTS: ts,
		ActionID: "approve", BlockID: "approval", Value: "deal-42", Text: "Approve",
	})
	if err != nil {
		t.Fatal(err)
	}
	r := <-got
	if ct := r.header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Fatalf("content type %q", ct)
	}
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(formValue(t, r.body, "payload")), &cb); err != nil {
		t.Fatalf("slack-go cannot decode the payload: %v", err)
	}
	if cb.Type != slack.InteractionTypeBlockActions || cb.User.ID != alice || cb.Team.ID != acme || cb.Channel.ID != sales ||
		cb.Container.MessageTs != ts || cb.ResponseURL != d.ResponseURL || cb.TriggerID != d.TriggerID {
		t.Fatalf("callback %+v", cb)
	}
	acts := cb.ActionCallback.BlockActions
	if len(acts) != 1 || acts[0].ActionID != "approve" || acts[0].BlockID != "approval" || acts[0].Value != "deal-42" || acts[0].Type != "button" {
		t.Fatalf("actions %+v", acts)
	}
	if len(cb.Message.Blocks.BlockSet) != 1 {
		t.Fatalf("payload should carry the clicked message, got %+v", cb.Message)
	}

	// replace_original through the response_url rewrites the message.
	wantOK(t, postJSONTo(t, d.ResponseURL, map[string]any{"replace_original": true, "text": "Approved by alice"}))
	msgs, err := srv.WaitForMessages(testContext(t), 1, MessageFilter{Kind: KindResponseURL})
	if err != nil {
		t.Fatal(err)
	}
	if m := msgs[0]; !m.ReplaceOriginal || m.TS != ts || m.Text != "Approved by alice" {
		t.Fatalf("recorded %+v", m)
	}
	if _, _, _, err := api.UpdateMessageContext(testContext(t), sales, ts, slack.MsgOptionText("still mine", false)); err != nil {
		t.Fatalf("the replaced message is still the bot's: %v", err)
	}
}

func TestSenderEvents(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	appURL, got := fakeApp(t, "standin-signing-secret", func(w http.ResponseWriter, body []byte) {
		// Answer url_verification by echoing the challenge, as apps must.
		var v struct{ Type, Challenge string }
		_ = json.Unmarshal(body, &v)
		if v.Type == "url_verification" {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, v.Challenge)
		}
	})
	sd := srv.NewSender(nil)

	d, err := sd.URLVerification(testContext(t), appURL, "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")
	if err != nil {
		t.Fatal(err)
	}
	if string(d.Body) != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
		t.Fatalf("challenge answer %q", d.Body)
	}
	<-got

	ev, err := sd.NewMessageEvent(acme, sales, bob, "new lead: Initech")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sd.SendEvent(testContext(t), appURL, ev); err != nil {
		t.Fatal(err)
	}
	first := <-got
	parsed, err := slackevents.ParseEvent(first.body, slackevents.OptionVerifyToken(&slackevents.TokenComparator{VerificationToken: "standin-verification-token"}))
	if err != nil {
		t.Fatalf("slackevents cannot parse the callback: %v", err)
	}
	cb, ok := parsed.Data.(*slackevents.EventsAPICallbackEvent)
	if !ok || cb.EventID != ev.EventID || cb.TeamID != acme || cb.APIAppID != "A0CRMSLACK1" {
		t.Fatalf("outer event %+v", parsed.Data)
	}
	msg, ok := parsed.InnerEvent.Data.(*slackevents.MessageEvent)
	if !ok || msg.Channel != sales || msg.User != bob || msg.Text != "new lead: Initech" || msg.ChannelType != "channel" {
		t.Fatalf("inner event %+v", parsed.InnerEvent.Data)
	}
	if first.header.Get("X-Slack-Retry-Num") != "" {
		t.Fatal("a first delivery carries no retry header")
	}

	if _, err := sd.RetryEvent(testContext(t), appURL, ev, 1); err != nil {
		t.Fatal(err)
	}
	retry := <-got
	if string(retry.body) != string(first.body) {
		t.Fatalf("a retry must resend the same body\nfirst %s\nretry %s", first.body, retry.body)
	}
	if retry.header.Get("X-Slack-Retry-Num") != "1" || retry.header.Get("X-Slack-Retry-Reason") != "http_timeout" {
		t.Fatalf("retry headers %v", retry.header)
	}
}

func TestSenderNegativeSignatures(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	appURL, _ := fakeApp(t, "standin-signing-secret", ok200)
	sd := srv.NewSender(nil)
	ev, err := sd.NewEvent(acme, map[string]any{"type": "app_mention", "user": alice, "text": "<@U0ACMEBOT1> hi", "channel": sales})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opt  SendOption
		want int
	}{
		{"right secret", WithSigningSecret("standin-signing-secret"), http.StatusOK},
		{"wrong secret", WithSigningSecret("not-the-secret"), http.StatusUnauthorized},
		{"stale timestamp", WithTimestamp(time.Now().Add(-6 * time.Minute)), http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := sd.SendEvent(testContext(t), appURL, ev, tt.opt)
			if err != nil {
				t.Fatal(err)
			}
			if d.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", d.StatusCode, tt.want)
			}
		})
	}
}

func TestSenderUnknownPlaces(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	sd := srv.NewSender(nil)
	tests := []struct {
		name string
		cmd  SlashCommand
	}{
		{"unknown team", SlashCommand{TeamID: "T0NOPE", ChannelID: general, UserID: alice}},
		{"channel of another team", SlashCommand{TeamID: acme, ChannelID: globexGnrl, UserID: alice}},
		{"unknown user", SlashCommand{TeamID: acme, ChannelID: general, UserID: ivy}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := sd.SlashCommand(testContext(t), "http://127.0.0.1:1/", tt.cmd); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}

// Slack sends a command's text with &, < and > as HTML entities and
// everything else as typed.
func TestSenderSlashCommandEscapesTextAsSlackDoes(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	appURL, got := fakeApp(t, "standin-signing-secret", ok200)
	typed := `deals [amount] < [20000] [a&b] >= ["x"] é`
	if _, err := srv.NewSender(nil).SlashCommand(testContext(t), appURL, SlashCommand{TeamID: globex, ChannelID: globexGnrl, UserID: ivy, Command: "/crm", Text: typed}); err != nil {
		t.Fatal(err)
	}
	r := <-got
	form, err := url.ParseQuery(string(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if want := `deals [amount] &lt; [20000] [a&amp;b] &gt;= ["x"] é`; form.Get("text") != want {
		t.Fatalf("text %q, want %q", form.Get("text"), want)
	}
}
