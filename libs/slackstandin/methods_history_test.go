package slackstandin

import (
	"encoding/base64"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/slack-go/slack"
)

// postWithMarker posts text to channel with metadata {event_type: "crm_test",
// event_payload: {n: text}} and returns its ts.
func postWithMarker(t *testing.T, api *slack.Client, channel, text string, opts ...slack.MsgOption) string {
	t.Helper()
	opts = append([]slack.MsgOption{
		slack.MsgOptionText(text, false),
		slack.MsgOptionMetadata(slack.SlackMetadata{EventType: "crm_test", EventPayload: map[string]any{"n": text}}),
	}, opts...)
	_, ts, err := api.PostMessageContext(testContext(t), channel, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func TestConversationsHistoryWithSlackGo(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	api := slackClient(t, srv, srv.IssueBotToken(acme))
	var ts []string // oldest first
	for i := range 5 {
		ts = append(ts, postWithMarker(t, api, sales, "m"+string(rune('1'+i))))
	}
	// A thread reply is not part of the channel's history.
	postWithMarker(t, api, sales, "reply", slack.MsgOptionTS(ts[0]))

	// read pages through with limit 2 and returns texts and metadata.
	read := func(t *testing.T, p slack.GetConversationHistoryParameters) (texts []string, meta []slack.SlackMetadata) {
		t.Helper()
		p.ChannelID, p.Limit = sales, 2
		for pages := 0; ; pages++ {
			resp, err := api.GetConversationHistoryContext(testContext(t), &p)
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Messages) > 2 || pages > 10 {
				t.Fatalf("page of %d messages, page %d", len(resp.Messages), pages)
			}
			for _, m := range resp.Messages {
				texts = append(texts, m.Text)
				meta = append(meta, m.Metadata)
			}
			if resp.HasMore != (resp.ResponseMetaData.NextCursor != "") {
				t.Fatalf("has_more %v with next_cursor %q", resp.HasMore, resp.ResponseMetaData.NextCursor)
			}
			if !resp.HasMore {
				return texts, meta
			}
			p.Cursor = resp.ResponseMetaData.NextCursor
		}
	}

	t.Run("everything, newest first, with metadata", func(t *testing.T) {
		t.Parallel()
		texts, meta := read(t, slack.GetConversationHistoryParameters{IncludeAllMetadata: true})
		want := []string{"m5", "m4", "m3", "m2", "m1", "Anyone seen the Q3 forecast?"}
		if !slices.Equal(texts, want) {
			t.Fatalf("got %q, want %q", texts, want)
		}
		for i, m := range meta[:5] {
			if m.EventType != "crm_test" || m.EventPayload["n"] != want[i] {
				t.Fatalf("message %d metadata %+v", i, m)
			}
		}
		if meta[5].EventType != "" {
			t.Fatalf("the seed message has metadata %+v", meta[5])
		}
	})
	t.Run("metadata only when asked for", func(t *testing.T) {
		t.Parallel()
		_, meta := read(t, slack.GetConversationHistoryParameters{})
		for _, m := range meta {
			if m.EventType != "" {
				t.Fatalf("metadata without include_all_metadata: %+v", m)
			}
		}
	})
	bounds := []struct {
		name string
		p    slack.GetConversationHistoryParameters
		want []string
	}{
		{"oldest is exclusive", slack.GetConversationHistoryParameters{Oldest: ts[1]}, []string{"m5", "m4", "m3"}},
		{"oldest inclusive", slack.GetConversationHistoryParameters{Oldest: ts[1], Inclusive: true}, []string{"m5", "m4", "m3", "m2"}},
		{"latest is exclusive", slack.GetConversationHistoryParameters{Latest: ts[1]}, []string{"m1", "Anyone seen the Q3 forecast?"}},
		{"between, inclusive", slack.GetConversationHistoryParameters{Oldest: ts[1], Latest: ts[3], Inclusive: true}, []string{"m4", "m3", "m2"}},
		{"whole seconds", slack.GetConversationHistoryParameters{Oldest: "1700000000", Latest: "1700000001"}, []string{"Anyone seen the Q3 forecast?"}},
		{"nothing", slack.GetConversationHistoryParameters{Oldest: ts[4]}, nil},
	}
	for _, tt := range bounds {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got, _ := read(t, tt.p); !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("raw answer", func(t *testing.T) {
		t.Parallel()
		a := callForm(t, srv, "conversations.history", srv.IssueBotToken(acme), url.Values{
			"channel": {sales}, "limit": {"1"}, "include_all_metadata": {"true"},
		})
		wantOK(t, a)
		msgs := a.body["messages"].([]any)
		m := msgs[0].(map[string]any)
		if m["ts"] != ts[4] || m["bot_id"] != "B0ACMEBOT1" || m["type"] != "message" || a.body["has_more"] != true {
			t.Fatalf("answer %v", a.body)
		}
		if md := m["metadata"].(map[string]any); md["event_type"] != "crm_test" {
			t.Fatalf("metadata %v", md)
		}
		cursor := a.body["response_metadata"].(map[string]any)["next_cursor"].(string)
		if raw, _ := base64.StdEncoding.DecodeString(cursor); string(raw) != "next_ts:"+strings.Replace(ts[3], ".", "", 1) {
			t.Fatalf("cursor %q decodes to %q", cursor, raw)
		}
	})
	t.Run("no posts yet", func(t *testing.T) {
		t.Parallel()
		resp, err := api.GetConversationHistoryContext(testContext(t), &slack.GetConversationHistoryParameters{ChannelID: dealDesk})
		if err != nil || len(resp.Messages) != 0 || resp.HasMore {
			t.Fatalf("%+v %v", resp, err)
		}
	})
}

func TestConversationsHistoryErrors(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	tok := srv.IssueBotToken(acme)
	noHistory := srv.IssueBotToken(acme, "chat:write", "channels:read")
	publicOnly := srv.IssueBotToken(acme, "channels:history")
	tests := []struct {
		name, token string
		form        url.Values
		want        string
	}{
		{"no channel", tok, url.Values{}, "invalid_arguments"},
		{"unknown channel", tok, url.Values{"channel": {"C0NOPE"}}, "channel_not_found"},
		{"another team's channel", tok, url.Values{"channel": {globexGnrl}}, "channel_not_found"},
		{"private channel the bot is not in", tok, url.Values{"channel": {exec}}, "channel_not_found"},
		{"public channel the bot is not in", tok, url.Values{"channel": {random}}, "not_in_channel"},
		{"no history scope", noHistory, url.Values{"channel": {sales}}, "missing_scope"},
		{"private needs groups:history", publicOnly, url.Values{"channel": {dealDesk}}, "missing_scope"},
		{"bad oldest", tok, url.Values{"channel": {sales}, "oldest": {"yesterday"}}, "invalid_ts_oldest"},
		{"bad latest", tok, url.Values{"channel": {sales}, "latest": {"1.2.3"}}, "invalid_ts_latest"},
		{"bad limit", tok, url.Values{"channel": {sales}, "limit": {"-1"}}, "invalid_limit"},
		{"bad cursor", tok, url.Values{"channel": {sales}, "cursor": {"!!"}}, "invalid_cursor"},
		{"unauthenticated", "", url.Values{"channel": {sales}}, "not_authed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantError(t, callForm(t, srv, "conversations.history", tt.token, tt.form), tt.want)
		})
	}
	a := callForm(t, srv, "conversations.history", noHistory, url.Values{"channel": {sales}})
	if a.body["needed"] != "channels:history" {
		t.Fatalf("missing_scope names %v", a.body["needed"])
	}
	// An archived channel's history can still be read.
	wantOK(t, callForm(t, srv, "conversations.history", tok, url.Values{"channel": {oldPipeline}}))
}

func TestConversationsHistoryTier3(t *testing.T) {
	t.Parallel()
	srv := startServer(t, Config{Now: newFakeClock().Now})
	api := slackClient(t, srv, srv.IssueBotToken(acme))
	p := &slack.GetConversationHistoryParameters{ChannelID: sales}
	for i := range 50 {
		if _, err := api.GetConversationHistoryContext(testContext(t), p); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
	_, err := api.GetConversationHistoryContext(testContext(t), p)
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) {
		t.Fatalf("the 51st Tier 3 call in a minute: %#v", err)
	}
}

func TestPostMessageMetadata(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	tok := srv.IssueBotToken(acme)
	post := func(t *testing.T, metadata string) apiAnswer {
		t.Helper()
		return callForm(t, srv, "chat.postMessage", tok, url.Values{"channel": {general}, "text": {"x"}, "metadata": {metadata}})
	}
	tests := []struct {
		name, metadata, want string
	}{
		{"not JSON", "event_type=x", "invalid_metadata_format"},
		{"not an object", `["crm",{}]`, "invalid_metadata_format"},
		{"null", `null`, "invalid_metadata_format"},
		{"no event_type", `{"event_payload":{"a":1}}`, "invalid_metadata_schema"},
		{"event_type not a string", `{"event_type":7,"event_payload":{}}`, "invalid_metadata_schema"},
		{"no event_payload", `{"event_type":"crm"}`, "invalid_metadata_schema"},
		{"event_payload not an object", `{"event_type":"crm","event_payload":"a"}`, "invalid_metadata_schema"},
		{"too large", `{"event_type":"crm","event_payload":{"a":"` + strings.Repeat("x", 9000) + `"}}`, "metadata_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantError(t, post(t, tt.metadata), tt.want)
		})
	}
	t.Run("form string", func(t *testing.T) {
		t.Parallel()
		a := post(t, `{"event_type":"crm","event_payload":{"k":"v"}}`)
		wantOK(t, a)
		if md := a.body["message"].(map[string]any)["metadata"].(map[string]any); md["event_type"] != "crm" {
			t.Fatalf("answer's metadata %v", md)
		}
	})
	t.Run("JSON body, inline object", func(t *testing.T) {
		t.Parallel()
		a := callJSON(t, srv, "chat.postMessage", tok, map[string]any{
			"channel": dealDesk, "text": "x", "metadata": map[string]any{"event_type": "crm", "event_payload": map[string]any{"k": 1}},
		})
		wantOK(t, a)
		got := srv.Messages(MessageFilter{Channel: dealDesk})
		if len(got) != 1 || string(got[0].Metadata) != `{"event_type":"crm","event_payload":{"k":1}}` {
			t.Fatalf("recorded %+v", got)
		}
	})
	t.Run("JSON body, encoded string", func(t *testing.T) {
		t.Parallel()
		wantOK(t, callJSON(t, srv, "chat.postMessage", tok, map[string]any{
			"channel": general, "text": "x", "metadata": `{"event_type":"crm","event_payload":{}}`,
		}))
	})
}

func TestGetPermalinkWithSlackGo(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	api := slackClient(t, srv, srv.IssueBotToken(acme))
	parent := postWithMarker(t, api, sales, "parent")
	reply := postWithMarker(t, api, sales, "reply", slack.MsgOptionTS(parent))
	tests := []struct {
		name, channel, ts, want, err string
	}{
		{"a person's message", sales, "1700000000.000100", "https://acme-corp.slack.com/archives/C0ACMESALE/p1700000000000100", ""},
		{"the bot's", sales, parent, "https://acme-corp.slack.com/archives/C0ACMESALE/p" + strings.Replace(parent, ".", "", 1), ""},
		{"a reply", sales, reply, "https://acme-corp.slack.com/archives/C0ACMESALE/p" + strings.Replace(reply, ".", "", 1) + "?thread_ts=" + parent + "&cid=C0ACMESALE", ""},
		{"no such message", sales, "1700000000.000101", "", "message_not_found"},
		{"no ts", sales, "", "", "message_not_found"},
		{"message of another channel", general, parent, "", "message_not_found"},
		{"private channel the bot is not in", exec, parent, "", "channel_not_found"},
		{"unknown channel", "C0NOPE", parent, "", "channel_not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := api.GetPermalinkContext(testContext(t), &slack.PermalinkParameters{Channel: tt.channel, Ts: tt.ts})
			if code := slackErr(t, err); code != tt.err || got != tt.want {
				t.Fatalf("got %q (%q), want %q (%q)", got, code, tt.want, tt.err)
			}
		})
	}
	t.Run("globex", func(t *testing.T) {
		t.Parallel()
		got, err := slackClient(t, srv, srv.IssueBotToken(globex)).GetPermalinkContext(testContext(t),
			&slack.PermalinkParameters{Channel: "C0GLBXDEAL", Ts: "1700000100.000200"})
		if err != nil || got != "https://globex.slack.com/archives/C0GLBXDEAL/p1700000100000200" {
			t.Fatalf("%q %v", got, err)
		}
	})
}

func TestFilesInfoWithSlackGo(t *testing.T) {
	t.Parallel()
	srv, clock := startQuiet(t)
	api := slackClient(t, srv, srv.IssueBotToken(acme))
	report := "deal,amount\nInitech,120000\n"
	sum, err := api.UploadFileContext(testContext(t), slack.UploadFileParameters{
		Reader: strings.NewReader(report), FileSize: len(report), Filename: "pipeline.csv",
		Title: "Pipeline", Channel: sales, InitialComment: "Weekly pipeline",
	})
	if err != nil {
		t.Fatal(err)
	}
	f, comments, _, err := api.GetFileInfoContext(testContext(t), sum.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if f.ID != sum.ID || f.Name != "pipeline.csv" || f.Title != "Pipeline" || f.Size != len(report) || f.User != acmeBot ||
		f.Mimetype != "text/csv" || f.Filetype != "csv" || !slices.Equal(f.Channels, []string{sales}) || len(comments) != 0 ||
		f.Created.Time().Unix() != clock.Now().Unix() {
		t.Fatalf("file %+v", f)
	}
	shares := f.Shares.Public[sales]
	if len(shares) != 1 {
		t.Fatalf("shares %+v", f.Shares)
	}
	// The share is a message in the channel's history, carrying the file.
	h, err := api.GetConversationHistoryContext(testContext(t), &slack.GetConversationHistoryParameters{ChannelID: sales, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	m := h.Messages[0]
	if m.Timestamp != shares[0].Ts || len(m.Files) != 1 || m.Files[0].ID != sum.ID || m.Text != "Weekly pipeline" {
		t.Fatalf("history's newest message %+v, share %+v", m, shares[0])
	}
	if got := srv.Files()[0].Shares; len(got) != 1 || got[0].TS != shares[0].Ts {
		t.Fatalf("recorded shares %+v", got)
	}

	t.Run("a DM share is private", func(t *testing.T) {
		t.Parallel()
		dm, err := api.UploadFileContext(testContext(t), slack.UploadFileParameters{
			Reader: strings.NewReader("x"), FileSize: 1, Filename: "x.bin", Channel: alice,
		})
		if err != nil {
			t.Fatal(err)
		}
		f, _, _, err := api.GetFileInfoContext(testContext(t), dm.ID, 0, 0)
		if err != nil || len(f.IMs) != 1 || len(f.Channels) != 0 || len(f.Shares.Private[f.IMs[0]]) != 1 || f.IsPublic {
			t.Fatalf("%+v %v", f, err)
		}
	})
	tests := []struct {
		name string
		api  *slack.Client
		file string
		want string
	}{
		{"unknown file", api, "F0NOPE", "file_not_found"},
		{"another team's file", slackClient(t, srv, srv.IssueBotToken(globex)), sum.ID, "file_not_found"},
		{"needs files:read", slackClient(t, srv, srv.IssueBotToken(acme, "files:write")), sum.ID, "missing_scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, _, err := tt.api.GetFileInfoContext(testContext(t), tt.file, 0, 0)
			if got := slackErr(t, err); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("reserved but not completed", func(t *testing.T) {
		t.Parallel()
		tok := srv.IssueBotToken(acme)
		u := callForm(t, srv, "files.getUploadURLExternal", tok, url.Values{"filename": {"a"}, "length": {"1"}})
		wantOK(t, u)
		wantError(t, callForm(t, srv, "files.info", tok, url.Values{"file": {u.body["file_id"].(string)}}), "file_not_found")
	})
}

func FuzzReadMetadata(f *testing.F) {
	for _, seed := range []string{
		`{"event_type":"a","event_payload":{}}`, `{"event_type":"","event_payload":{}}`, `null`, `[]`, `"x"`,
		`{"event_type":"a","event_payload":[1]}`, `{"event_type":"a","event_payload":{"b":{"c":[1,2]}}}`, ` `, `{`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := readMetadata(raw)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || !strings.Contains(ae.code, "metadata") {
				t.Fatalf("readMetadata(%q) = %v", raw, err)
			}
			return
		}
		if got == nil {
			return
		}
		again, err := readMetadata(got)
		if err != nil || string(again) != string(got) {
			t.Fatalf("normalised metadata %q does not read back: %q %v", got, again, err)
		}
	})
}

func FuzzParseTSArg(f *testing.F) {
	for _, seed := range []string{"1700000000.000100", "1700000000", "0", "1.5", "", ".", "-1", "1.1234567", "99999999999999999999", "9227000000000"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		n, err := parseTSArg(v, -1)
		if err == nil && v != "" && n < 0 {
			t.Fatalf("parseTSArg(%q) = %d", v, n)
		}
	})
}
