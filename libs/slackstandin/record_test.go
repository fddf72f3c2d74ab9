package slackstandin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

func getJSON(tb testing.TB, u string, v any) {
	tb.Helper()
	req, _ := http.NewRequestWithContext(testContext(tb), http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s: HTTP %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		tb.Fatal(err)
	}
}

func TestInspectionOverHTTP(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	api := slackClient(t, srv, srv.IssueBotToken(acme))
	for _, ch := range []string{sales, general, sales} {
		if _, _, err := api.PostMessageContext(testContext(t), ch, slack.MsgOptionText("to "+ch, false)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := api.UploadFileContext(testContext(t), slack.UploadFileParameters{Content: "hello", FileSize: 5, Filename: "a.txt", Channel: sales}); err != nil {
		t.Fatal(err)
	}

	var msgs struct {
		OK       bool      `json:"ok"`
		Messages []Message `json:"messages"`
	}
	getJSON(t, srv.URL()+"/_standin/messages?"+url.Values{"channel": {sales}, "team": {acme}}.Encode(), &msgs)
	if !msgs.OK || len(msgs.Messages) != 2 || msgs.Messages[0].Text != "to "+sales || msgs.Messages[0].Kind != KindMessage {
		t.Fatalf("messages %+v", msgs)
	}
	var files struct {
		Files []File `json:"files"`
	}
	getJSON(t, srv.URL()+"/_standin/files", &files)
	if len(files.Files) != 1 || files.Files[0].Name != "a.txt" || files.Files[0].Length != 5 {
		t.Fatalf("files %+v", files)
	}
	var stats Stats
	getJSON(t, srv.URL()+"/_standin/stats", &stats)
	if stats.Calls["chat.postMessage"] != 3 {
		t.Fatalf("stats %+v", stats)
	}

	resp, err := http.Post(srv.URL()+"/_standin/reset", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(srv.Messages(MessageFilter{})) != 0 || len(srv.Files()) != 0 || srv.Stats().Calls["chat.postMessage"] != 0 {
		t.Fatal("reset keeps records")
	}
	if _, err := api.AuthTestContext(testContext(t)); err != nil {
		t.Fatalf("tokens survive a reset: %v", err)
	}
	if _, _, _, err := api.UpdateMessageContext(testContext(t), sales, msgs.Messages[0].TS, slack.MsgOptionText("x", false)); slackErr(t, err) != "message_not_found" {
		t.Fatalf("messages posted before a reset are gone: %v", err)
	}
}

func TestIssueTokenOverHTTP(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	resp, err := http.Post(srv.URL()+"/_standin/tokens?team="+globex, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	at, err := slackClient(t, srv, got.AccessToken).AuthTestContext(testContext(t))
	if err != nil || at.TeamID != globex {
		t.Fatalf("%+v %v", at, err)
	}
	resp, err = http.Post(srv.URL()+"/_standin/tokens?team=T0NOPE", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown team: HTTP %d", resp.StatusCode)
	}
}

func TestWaitForMessages(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	api := slackClient(t, srv, srv.IssueBotToken(acme))
	posted := make(chan error, 1)
	go func() {
		for i := range 3 {
			if _, _, err := api.PostMessageContext(testContext(t), general, slack.MsgOptionText(strings.Repeat("!", i+1), false)); err != nil {
				posted <- err
				return
			}
		}
		posted <- nil
	}()
	msgs, err := srv.WaitForMessages(testContext(t), 3, MessageFilter{Channel: general})
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 || msgs[2].Text != "!!!" {
		t.Fatalf("%+v", msgs)
	}
	if err := <-posted; err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	got, err := srv.WaitForMessages(ctx, 4, MessageFilter{Channel: general})
	if !errors.Is(err, context.DeadlineExceeded) || len(got) != 3 {
		t.Fatalf("on deadline: %d messages, %v", len(got), err)
	}
	if _, err := srv.WaitForFiles(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("files on deadline: %v", err)
	}
}

func TestFileContentNotFound(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	resp, err := http.Get(srv.URL() + "/_standin/files/F0NOPE/content")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("HTTP %d %s", resp.StatusCode, body)
	}
}
