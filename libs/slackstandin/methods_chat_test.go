package slackstandin

import (
	"encoding/json"
	"errors"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/slack-go/slack"

	"github.com/crmslack/crmslack/libs/blockkit"
)

var reTSWire = regexp.MustCompile(`^\d{10}\.\d{6}$`)

func TestPostMessageWithSlackGo(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	api := slackClient(t, srv, srv.IssueBotToken(acme))
	blocks := slack.MsgOptionBlocks(
		slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, "Deal won", false, false)),
		slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "*Initech* closed at $120k", false, false), nil, nil),
	)
	ch, ts, msg, err := api.PostMessageWithResponseContext(testContext(t), sales, slack.MsgOptionText("Deal won: Initech", false), blocks)
	if err != nil {
		t.Fatal(err)
	}
	if ch != sales || !reTSWire.MatchString(ts) {
		t.Fatalf("channel %q ts %q", ch, ts)
	}
	if msg.User != acmeBot || msg.BotID != "B0ACMEBOT1" || msg.Text != "Deal won: Initech" || len(msg.Blocks.BlockSet) != 2 || msg.Timestamp != ts {
		t.Fatalf("message object %+v", msg)
	}
	got := srv.Messages(MessageFilter{Channel: sales})
	if len(got) != 1 {
		t.Fatalf("recorded %d messages", len(got))
	}
	m := got[0]
	if m.Kind != KindMessage || m.Team != acme || m.Author != acmeBot || m.TS != ts || m.Text != "Deal won: Initech" {
		t.Fatalf("recorded %+v", m)
	}
	var recorded []map[string]any
	if err := json.Unmarshal(m.Blocks, &recorded); err != nil || len(recorded) != 2 || recorded[0]["type"] != "header" {
		t.Fatalf("recorded blocks %s (%v)", m.Blocks, err)
	}
}

func TestPostMessageTimestampsIncrease(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t) // the fake clock stands still: ts must still differ
	api := slackClient(t, srv, srv.IssueBotToken(acme))
	prev := ""
	for i := range 5 {
		_, ts, err := api.PostMessageContext(testContext(t), general, slack.MsgOptionText("tick", false))
		if err != nil {
			t.Fatal(err)
		}
		if ts <= prev {
			t.Fatalf("post %d: ts %s not after %s", i, ts, prev)
		}
		prev = ts
	}
}

func TestPostMessageThreadAndName(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	api := slackClient(t, srv, srv.IssueBotToken(acme))
	ch, parent, err := api.PostMessageContext(testContext(t), "#sales", slack.MsgOptionText("parent", false))
	if err != nil {
		t.Fatal(err)
	}
	if ch != sales {
		t.Fatalf("#sales resolved to %s", ch)
	}
	if _, _, err := api.PostMessageContext(testContext(t), sales, slack.MsgOptionText("reply", false), slack.MsgOptionTS(parent)); err != nil {
		t.Fatal(err)
	}
	replies := srv.Messages(MessageFilter{ThreadTS: parent})
	if len(replies) != 1 || replies[0].Text != "reply" {
		t.Fatalf("thread replies %+v", replies)
	}
}

func TestPostMessageToUserOpensDM(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	api := slackClient(t, srv, srv.IssueBotToken(acme))
	ch, _, err := api.PostMessageContext(testContext(t), alice, slack.MsgOptionText("your deal closed", false))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ch, "D") {
		t.Fatalf("posting to a user id answers the DM channel, got %q", ch)
	}
	dm, _, _, err := api.OpenConversationContext(testContext(t), &slack.OpenConversationParameters{Users: []string{alice}})
	if err != nil {
		t.Fatal(err)
	}
	if dm.ID != ch {
		t.Fatalf("conversations.open gave %s, postMessage used %s", dm.ID, ch)
	}
	if m := srv.Messages(MessageFilter{Channel: ch}); len(m) != 1 || m[0].User != alice {
		t.Fatalf("recorded %+v", m)
	}
}

func TestPostMessageErrors(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	bot := srv.IssueBotToken(acme)
	readOnly := srv.IssueBotToken(acme, "users:read")
	revoked := srv.IssueBotToken(globex)
	srv.RevokeTeam(globex)
	long := strings.Repeat("x", blockkit.MaxMessageText)

	tests := []struct {
		name    string
		token   string
		form    url.Values
		want    string // "" means accepted
		wantMsg string // a response_metadata.messages entry
	}{
		{"text at the limit", bot, url.Values{"channel": {sales}, "text": {long}}, "", ""},
		{"chat:write.public is not granted", bot, url.Values{"channel": {random}, "text": {"hi"}}, "not_in_channel", ""},
		{"no token", "", url.Values{"channel": {sales}, "text": {"hi"}}, "not_authed", ""},
		{"unknown token", "xoxb-1-2-nope", url.Values{"channel": {sales}, "text": {"hi"}}, "invalid_auth", ""},
		{"revoked team", revoked, url.Values{"channel": {globexGnrl}, "text": {"hi"}}, "token_revoked", ""},
		{"missing scope", readOnly, url.Values{"channel": {sales}, "text": {"hi"}}, "missing_scope", ""},
		{"no channel", bot, url.Values{"text": {"hi"}}, "channel_not_found", ""},
		{"unknown channel", bot, url.Values{"channel": {"C0NOPE"}, "text": {"hi"}}, "channel_not_found", ""},
		{"other team's channel", bot, url.Values{"channel": {globexGnrl}, "text": {"hi"}}, "channel_not_found", ""},
		{"private channel bot is not in", bot, url.Values{"channel": {exec}, "text": {"hi"}}, "channel_not_found", ""},
		{"archived", bot, url.Values{"channel": {oldPipeline}, "text": {"hi"}}, "is_archived", ""},
		{"no content", bot, url.Values{"channel": {sales}}, "no_text", ""},
		{"empty blocks and no text", bot, url.Values{"channel": {sales}, "blocks": {"[]"}}, "no_text", ""},
		{"text too long", bot, url.Values{"channel": {sales}, "text": {long + "x"}}, "msg_too_long", ""},
		{"invalid blocks", bot, url.Values{"channel": {sales}, "blocks": {`[{"type":"header","text":{"type":"mrkdwn","text":"x"}}]`}}, "invalid_blocks", "[ERROR] must be a valid enum value: plain_text [json-pointer:/blocks/0/text/type]"},
		{"malformed blocks", bot, url.Values{"channel": {sales}, "blocks": {`[{"type":`}}, "invalid_blocks_format", ""},
		{"malformed attachments", bot, url.Values{"channel": {sales}, "attachments": {`{"a":1}`}}, "invalid_attachments", ""},
	}
	// The group returns once its parallel subtests are done.
	t.Run("group", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				a := callForm(t, srv, "chat.postMessage", tt.token, tt.form)
				if tt.want == "" {
					wantOK(t, a)
					return
				}
				wantError(t, a, tt.want)
				if tt.wantMsg != "" {
					msgs, _ := a.body["response_metadata"].(map[string]any)["messages"].([]any)
					if len(msgs) == 0 || msgs[0] != tt.wantMsg {
						t.Fatalf("messages %v, want %q", msgs, tt.wantMsg)
					}
				}
			})
		}
	})
	if n := len(srv.Messages(MessageFilter{})); n != 1 {
		t.Fatalf("only the accepted post is recorded, got %d", n)
	}
}

func TestPostMessageMissingScopeDetails(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	api := slackClient(t, srv, srv.IssueBotToken(acme, "users:read", "channels:read"))
	_, _, err := api.PostMessageContext(testContext(t), sales, slack.MsgOptionText("hi", false))
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) || se.Err != "missing_scope" || se.Needed != "chat:write" || se.Provided != "users:read,channels:read" {
		t.Fatalf("got %#v", err)
	}
}

func TestPostMessagePublicChannelWithChatWritePublic(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	api := slackClient(t, srv, srv.IssueBotToken(acme, "chat:write", "chat:write.public"))
	if _, _, err := api.PostMessageContext(testContext(t), random, slack.MsgOptionText("hello", false)); err != nil {
		t.Fatalf("chat:write.public posts in public channels the bot is not in: %v", err)
	}
	if _, _, err := api.PostMessageContext(testContext(t), exec, slack.MsgOptionText("hello", false)); slackErr(t, err) != "channel_not_found" {
		t.Fatalf("but not in private ones: %v", err)
	}
}

func TestPostMessageJSONBody(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	bot := srv.IssueBotToken(acme)
	body := map[string]any{
		"channel": dealDesk,
		"text":    "Discount request",
		"blocks":  []any{map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": "*20%* off"}}},
	}
	a := callJSON(t, srv, "chat.postMessage", bot, body)
	wantOK(t, a)
	if a.body["channel"] != dealDesk {
		t.Fatalf("answer %v", a.body)
	}
	if m := srv.Messages(MessageFilter{Channel: dealDesk}); len(m) != 1 || !strings.Contains(string(m[0].Blocks), "*20%* off") {
		t.Fatalf("recorded %+v", m)
	}

	// Slack reads the token of a JSON body from the header only.
	body["token"] = bot
	wantError(t, callJSON(t, srv, "chat.postMessage", "", body), "not_authed")
}

func TestUpdateMessage(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	api := slackClient(t, srv, srv.IssueBotToken(acme))
	_, ts, err := api.PostMessageContext(testContext(t), sales, slack.MsgOptionText("Deal at stage 2", false))
	if err != nil {
		t.Fatal(err)
	}
	ch, uts, text, err := api.UpdateMessageContext(testContext(t), sales, ts, slack.MsgOptionText("Deal at stage 3", false))
	if err != nil {
		t.Fatal(err)
	}
	if ch != sales || uts != ts || text != "Deal at stage 3" {
		t.Fatalf("update answered %s %s %q", ch, uts, text)
	}
	upd := srv.Messages(MessageFilter{Kind: KindUpdate})
	if len(upd) != 1 || upd[0].TS != ts || upd[0].Text != "Deal at stage 3" {
		t.Fatalf("recorded %+v", upd)
	}

	tests := []struct {
		name, channel, ts string
		opts              []slack.MsgOption
		want              string
	}{
		{"unknown ts", sales, "1700000000.999999", []slack.MsgOption{slack.MsgOptionText("x", false)}, "message_not_found"},
		{"someone else's message", sales, "1700000000.000100", []slack.MsgOption{slack.MsgOptionText("x", false)}, "cant_update_message"},
		{"unknown channel", "C0NOPE", ts, []slack.MsgOption{slack.MsgOptionText("x", false)}, "channel_not_found"},
		{"no content", sales, ts, nil, "no_text"},
		{"invalid blocks", sales, ts, []slack.MsgOption{slack.MsgOptionBlocks(slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, strings.Repeat("h", 151), false, false)))}, "invalid_blocks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, _, err := api.UpdateMessageContext(testContext(t), tt.channel, tt.ts, tt.opts...)
			if got := slackErr(t, err); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPostEphemeral(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	api := slackClient(t, srv, srv.IssueBotToken(acme))
	ts, err := api.PostEphemeralContext(testContext(t), sales, alice, slack.MsgOptionText("Only you can see this", false))
	if err != nil {
		t.Fatal(err)
	}
	if !reTSWire.MatchString(ts) {
		t.Fatalf("message_ts %q", ts)
	}
	got := srv.Messages(MessageFilter{Kind: KindEphemeral})
	if len(got) != 1 || got[0].User != alice || got[0].Channel != sales || got[0].TS != ts {
		t.Fatalf("recorded %+v", got)
	}
	if _, _, _, err := api.UpdateMessageContext(testContext(t), sales, ts, slack.MsgOptionText("x", false)); slackErr(t, err) != "message_not_found" {
		t.Fatalf("ephemeral messages cannot be updated: %v", err)
	}

	tests := []struct {
		name, channel, user, want string
	}{
		{"user not in channel", sales, dan, "user_not_in_channel"},
		{"unknown user", sales, "U0NOPE", "user_not_found"},
		{"bot not in channel", random, alice, "not_in_channel"},
		{"archived", oldPipeline, bob, "is_archived"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := api.PostEphemeralContext(testContext(t), tt.channel, tt.user, slack.MsgOptionText("x", false))
			if got := slackErr(t, err); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("missing user", func(t *testing.T) {
		t.Parallel()
		wantError(t, callForm(t, srv, "chat.postEphemeral", srv.IssueBotToken(acme), url.Values{"channel": {sales}, "text": {"x"}}), "invalid_arguments")
	})
}
