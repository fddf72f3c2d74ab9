package slackapi

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	dial := &net.OpError{Op: "dial", Err: errors.New("connection refused")}
	read := &net.OpError{Op: "read", Err: errors.New("connection reset")}
	for _, tc := range []struct {
		name       string
		err        error
		idempotent bool
		want       Kind
	}{
		{"429", &slack.RateLimitedError{RetryAfter: 3 * time.Second}, false, KindRateLimited},
		{"503", slack.StatusCodeError{Code: 503, Status: "503"}, false, KindTemporary},
		{"404 page", slack.StatusCodeError{Code: 404, Status: "404"}, false, KindRefused},
		{"invalid_auth", slack.SlackErrorResponse{Err: "invalid_auth"}, false, KindAuth},
		{"token_expired", slack.SlackErrorResponse{Err: "token_expired"}, false, KindAuth},
		{"channel_not_found", slack.SlackErrorResponse{Err: "channel_not_found"}, false, KindNotFound},
		{"users_not_found", slack.SlackErrorResponse{Err: "users_not_found"}, true, KindNotFound},
		{"internal_error", slack.SlackErrorResponse{Err: "internal_error"}, false, KindTemporary},
		{"unknown_method", slack.SlackErrorResponse{Err: "unknown_method"}, true, KindUnsupported},
		{"not_in_channel", slack.SlackErrorResponse{Err: "not_in_channel"}, false, KindRefused},
		{"refused connection", dial, false, KindTemporary},
		{"reset after sending a post", read, false, KindAmbiguous},
		{"reset on a lookup", read, true, KindTemporary},
		{"timeout of a post", context.DeadlineExceeded, false, KindAmbiguous},
	} {
		if got := KindOf(classify("m", tc.err, tc.idempotent)); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	var e *Error
	if !errors.As(classify("m", &slack.RateLimitedError{RetryAfter: 0}, false), &e) || e.RetryAfter != time.Second {
		t.Error("a 429 without Retry-After must wait at least a second")
	}
}

func TestResponseURLHosts(t *testing.T) {
	t.Parallel()
	local, err := New("http://127.0.0.1:8090/api/", http.DefaultClient, []string{"hooks.slack.com"})
	if err != nil {
		t.Fatal(err)
	}
	prod, err := New("https://slack.com/api/", http.DefaultClient, []string{"hooks.slack.com"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		c   *Client
		url string
		ok  bool
	}{
		{prod, "https://hooks.slack.com/commands/T1/1/abc", true},
		{prod, "http://hooks.slack.com/commands/T1/1/abc", false},
		{prod, "https://HOOKS.slack.com/commands/x", true},
		{prod, "https://hooks.slack.com.evil.example/x", false},
		{prod, "https://evil.example/?u=hooks.slack.com", false},
		{prod, "https://user@hooks.slack.com/commands/x", false},
		{prod, "https://slack.com/x", false}, // not a reply path
		{prod, "https://slack.com/actions/T1/1/abc", true},
		{prod, "https://hooks.slack.com/services/T1/B1/abc", false}, // an incoming webhook
		{prod, "https://hooks.slack.com/commands/../services/T1", false},
		{prod, "https://hooks.slack.com/commands/T1/1/abc?x=1", false},
		{prod, "/relative", false},
		{local, "http://127.0.0.1:8090/commands/abc", true},
		{local, "http://127.0.0.1:8090/response/abc", false},
		{local, "http://127.0.0.1:9999/commands/abc", false},
		{local, "https://hooks.slack.com/actions/x", true},
	} {
		if err := tc.c.CheckResponseURL(tc.url); (err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok=%v", tc.url, err, tc.ok)
		}
	}
}

func TestRespondErrors(t *testing.T) {
	t.Parallel()
	answers := map[string]func(w http.ResponseWriter){
		"/commands/ok": func(w http.ResponseWriter) { _, _ = w.Write([]byte(`{"ok":true}`)) },
		"/commands/expired": func(w http.ResponseWriter) {
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`{"ok":false,"error":"expired_url"}`))
		},
		"/commands/used": func(w http.ResponseWriter) {
			w.WriteHeader(404)
			_, _ = w.Write([]byte(`{"ok":false,"error":"used_url"}`))
		},
		"/commands/blocks": func(w http.ResponseWriter) {
			w.WriteHeader(400)
			_, _ = w.Write([]byte(`{"ok":false,"error":"invalid_blocks"}`))
		},
		"/commands/busy": func(w http.ResponseWriter) { w.WriteHeader(503) },
		"/commands/slow": func(w http.ResponseWriter) { w.Header().Set("Retry-After", "4"); w.WriteHeader(429) },
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { answers[r.URL.Path](w) }))
	defer srv.Close()
	c, err := New(srv.URL+"/api/", srv.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]Kind{"/commands/ok": 0, "/commands/expired": KindNotFound, "/commands/used": KindNotFound, "/commands/blocks": KindRefused, "/commands/busy": KindTemporary, "/commands/slow": KindRateLimited} {
		err := c.Respond(context.Background(), srv.URL+path, Response{Text: "x"})
		if KindOf(err) != want {
			t.Errorf("%s: %v, want kind %v", path, err, want)
		}
	}
	var e *Error
	if err := c.Respond(context.Background(), srv.URL+"/commands/slow", Response{Text: "x"}); !errors.As(err, &e) || e.RetryAfter != 4*time.Second {
		t.Errorf("Retry-After not read: %v", err)
	}
}

func TestPostMessage(t *testing.T) {
	t.Parallel()
	var got struct {
		auth, contentType string
		body              map[string]any
	}
	answers := map[string]func(w http.ResponseWriter){
		"C1": func(w http.ResponseWriter) {
			_, _ = w.Write([]byte(`{"ok":true,"channel":"C1","ts":"1700000000.000100","message":{"text":"hi","blocks":[]}}`))
		},
		"C2": func(w http.ResponseWriter) {
			_, _ = w.Write([]byte(`{"ok":false,"error":"channel_not_found","response_metadata":{"messages":["[ERROR] no"]}}`))
		},
		"C3": func(w http.ResponseWriter) { w.Header().Set("Retry-After", "7"); w.WriteHeader(429) },
		"C4": func(w http.ResponseWriter) { w.WriteHeader(503) },
		"C5": func(w http.ResponseWriter) { _, _ = w.Write([]byte(`{"ok":false,"error":"ratelimited"}`)) },
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/chat.postMessage" {
			t.Errorf("path %s", r.URL.Path)
		}
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("body: %v", err)
		}
		if body["channel"] == "C1" {
			got.auth, got.contentType, got.body = r.Header.Get("Authorization"), r.Header.Get("Content-Type"), body
		}
		answers[body["channel"].(string)](w)
	}))
	defer srv.Close()
	c, err := New(srv.URL+"/api/", srv.Client(), nil)
	if err != nil {
		t.Fatal(err)
	}
	post := func(ch string) (string, string, error) {
		return c.PostMessage(context.Background(), "xoxb-1", Post{
			Channel: ch, Content: Content{Text: "hi", Blocks: json.RawMessage(`[{"type":"section","text":{"type":"mrkdwn","text":"hi"}}]`)},
			ThreadTS: "1.2", Marker: "k1",
		})
	}
	channel, ts, err := post("C1")
	if err != nil || channel != "C1" || ts != "1700000000.000100" {
		t.Fatalf("post: %q %q %v", channel, ts, err)
	}
	if got.auth != "Bearer xoxb-1" || got.contentType != "application/json; charset=utf-8" {
		t.Errorf("headers: %q %q", got.auth, got.contentType)
	}
	want := map[string]any{
		"channel": "C1", "text": "hi", "thread_ts": "1.2", "unfurl_links": false,
		"blocks":   []any{map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": "hi"}}},
		"metadata": map[string]any{"event_type": MarkerEventType, "event_payload": map[string]any{MarkerField: "k1"}},
	}
	if !reflect.DeepEqual(got.body, want) {
		t.Errorf("body %v, want %v", got.body, want)
	}
	var e *Error
	if _, _, err := post("C2"); !errors.As(err, &e) || e.Kind != KindNotFound || e.Code != "channel_not_found" || e.Detail != "[ERROR] no" {
		t.Errorf("channel_not_found: %#v", err)
	}
	if _, _, err := post("C3"); !errors.As(err, &e) || e.Kind != KindRateLimited || e.RetryAfter != 7*time.Second {
		t.Errorf("429: %#v", err)
	}
	if _, _, err := post("C4"); KindOf(err) != KindTemporary {
		t.Errorf("503: %v", err)
	}
	if _, _, err := post("C5"); KindOf(err) != KindRateLimited {
		t.Errorf("ratelimited: %v", err)
	}
	for _, blocks := range []string{`{"type":"section"}`, `[{"text":"no type"}]`, `[`} {
		_, _, err := c.PostMessage(context.Background(), "xoxb-1", Post{Channel: "C1", Content: Content{Blocks: json.RawMessage(blocks)}})
		if !errors.As(err, &e) || e.Code != "invalid_blocks" {
			t.Errorf("blocks %s: %v", blocks, err)
		}
	}
}

// TestRepliesAskedUncompressed: the client delivery runs with does not ask
// Slack for gzip (which Slack, and the stand-in, would then send), and so
// never decodes a compressed reply.
func TestRepliesAskedUncompressed(t *testing.T) {
	t.Parallel()
	accept := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		accept <- r.Header.Get("Accept-Encoding")
		_, _ = w.Write([]byte(`{"ok":true,"channel":"C1","ts":"1700000000.000100"}`))
	}))
	defer srv.Close()
	c, err := New(srv.URL+"/api/", NewHTTPClient(4), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.PostMessage(context.Background(), "xoxb-1", Post{Channel: "C1", Content: Content{Text: "hi"}}); err != nil {
		t.Fatal(err)
	}
	if got := <-accept; got != "" {
		t.Fatalf("the request said Accept-Encoding %q", got)
	}
}
