package slackhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/crmslack/crmslack/libs/card"

	"github.com/crmslack/crmslack/services/gateway/internal/verify"
)

// edge is a handler with a settable clock and a captured log.
type edge struct {
	mux  *http.ServeMux
	pub  *fakePublisher
	reg  *prometheus.Registry
	log  *lockedBuffer
	mu   sync.Mutex
	now  time.Time
	h    *Handler
	fake *fakeAnswerer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) lines(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), substr)
}

func newEdge(t *testing.T, answerer Answerer) *edge {
	t.Helper()
	e := &edge{pub: &fakePublisher{}, reg: prometheus.NewRegistry(), log: &lockedBuffer{}, now: time.Unix(1_800_000_000, 0)}
	clock := func() time.Time {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.now
	}
	v, err := verify.New(clock, 0, secret)
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Now: clock, Registerer: e.reg, Answerer: answerer}
	if answerer != nil {
		o.Commands = []string{"/zcrm"}
	}
	h, err := New(v, e.pub, directory(), slog.New(slog.NewTextHandler(e.log, nil)), o)
	if err != nil {
		t.Fatal(err)
	}
	e.h = h
	e.mux = http.NewServeMux()
	h.Register(e.mux)
	return e
}

func (e *edge) advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
}

func (e *edge) send(t *testing.T, path string, body []byte, sec string) *httptest.ResponseRecorder {
	t.Helper()
	e.mu.Lock()
	now := e.now
	e.mu.Unlock()
	w := httptest.NewRecorder()
	e.mux.ServeHTTP(w, signed(path, body, now, sec))
	return w
}

func commandWith(kv ...string) []byte {
	v, _ := url.ParseQuery(string(command("T0ACME0001")))
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return []byte(v.Encode())
}

func interactionWith(responseURL, triggerID, actionTS string) []byte {
	p, _ := json.Marshal(map[string]any{
		"type": "block_actions", "team": map[string]any{"id": "T0ACME0001"}, "user": map[string]any{"id": "U0ACME0BOB"},
		"channel": map[string]any{"id": "C0ACMESALE"}, "container": map[string]any{"message_ts": "1700000000.000100"},
		"actions":      []any{map[string]any{"action_id": "share", "block_id": "b1", "value": "v1", "action_ts": actionTS}},
		"response_url": responseURL, "trigger_id": triggerID,
	})
	return []byte(url.Values{"payload": {string(p)}}.Encode())
}

// Only Slack's reply endpoints are accepted as response_url: an incoming
// webhook on hooks.slack.com, another host or another path is refused and
// nothing is published.
func TestResponseURLMustBeASlackReplyEndpoint(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, path string
		body       []byte
		status     int
	}{
		{"command to Slack's commands path", "/slack/commands", commandWith("response_url", "https://hooks.slack.com/commands/T0ACME0001/1/abc"), 200},
		{"command to an incoming webhook", "/slack/commands", commandWith("response_url", "https://hooks.slack.com/services/T0ACME0001/B01/xyz"), 400},
		{"command to another host", "/slack/commands", commandWith("response_url", "https://evil.example/commands/T/1/a"), 400},
		{"command without response_url", "/slack/commands", commandWith("response_url", ""), 400},
		{"click to Slack's actions path", "/slack/interactions", interactionWith("https://hooks.slack.com/actions/T0ACME0001/2/def", "1.2.a", "1700000001.000200"), 200},
		{"click to an incoming webhook", "/slack/interactions", interactionWith("https://hooks.slack.com/services/T0ACME0001/B01/xyz", "1.2.a", "1700000001.000200"), 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEdge(t, nil)
			w := e.send(t, c.path, c.body, secret)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d (%s)", w.Code, c.status, w.Body)
			}
			if published := len(e.pub.got); (c.status == 200) != (published == 1) {
				t.Fatalf("published %d", published)
			}
			if c.status != 200 {
				if n := testutil.ToFloat64(e.h.refused.total.WithLabelValues(strings.TrimPrefix(c.path, "/slack/"), "response_url")); n != 1 {
					t.Fatalf("refusals counted %v, want 1", n)
				}
			}
		})
	}
}

// A click without a trigger_id gets an id derived from what it is, so a
// replay of it is the same event (the stream's duplicate window drops it),
// while another click of the same button is a new one.
func TestInteractionWithoutTriggerIDHasAStableID(t *testing.T) {
	t.Parallel()
	e := newEdge(t, nil)
	const ru = "https://hooks.slack.com/actions/T0ACME0001/2/def"
	for _, body := range [][]byte{
		interactionWith(ru, "", "1700000001.000200"),
		interactionWith(ru, "", "1700000001.000200"), // the replay
		interactionWith(ru, "", "1700000002.000300"), // clicked again
	} {
		if w := e.send(t, "/slack/interactions", body, secret); w.Code != 200 {
			t.Fatalf("status %d", w.Code)
		}
	}
	ids := []string{}
	for _, p := range e.pub.got {
		ids = append(ids, p.ev.GetEnvelope().GetEventId())
	}
	if len(ids) != 3 || ids[0] != ids[1] || ids[0] == ids[2] || !strings.HasPrefix(ids[0], "slack-interaction:") {
		t.Fatalf("event ids %q: want the replay's equal to the first and a new click's different", ids)
	}
}

// A command whose text is not UTF-8 is answered with a clear message, with
// a warning, and never reaches the query service.
func TestCommandTextNotUTF8(t *testing.T) {
	t.Parallel()
	ans := &fakeAnswerer{org: make(chan string, 1)}
	e := newEdge(t, ans)
	w := e.send(t, "/slack/commands", commandWith("text", "leads caf\xe9"), secret)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "not valid text") {
		t.Fatalf("answer %d %s", w.Code, w.Body)
	}
	if len(ans.org) != 0 || len(e.pub.got) != 0 {
		t.Fatalf("asked the query service or published: %d %d", len(ans.org), len(e.pub.got))
	}
	if e.log.lines("level=WARN") != 1 || e.log.lines("level=ERROR") != 0 {
		t.Fatalf("log:\n%s", e.log.b.String())
	}
}

// A flood of refused requests is counted in full and logged by sample:
// the first of each reason per minute, then one line saying how many were
// not logged.
func TestRefusalsCountedAndLoggedBySample(t *testing.T) {
	t.Parallel()
	e := newEdge(t, nil)
	for range 50 {
		if w := e.send(t, "/slack/commands", command("T0ACME0001"), "forged"); w.Code != 401 {
			t.Fatalf("status %d", w.Code)
		}
	}
	for range 5 {
		if w := e.send(t, "/slack/commands", []byte("team_id=acme"), secret); w.Code != 400 {
			t.Fatalf("status %d", w.Code)
		}
	}
	if n := testutil.ToFloat64(e.h.refused.total.WithLabelValues("commands", "signature_mismatch")); n != 50 {
		t.Fatalf("signature_mismatch counted %v, want 50", n)
	}
	if n := testutil.ToFloat64(e.h.refused.total.WithLabelValues("commands", "bad_payload")); n != 5 {
		t.Fatalf("bad_payload counted %v, want 5", n)
	}
	if got := e.log.lines("signature check failed"); got != 1 {
		t.Fatalf("%d signature lines logged, want 1", got)
	}
	if got := e.log.lines("slash command refused"); got != 1 {
		t.Fatalf("%d payload lines logged, want 1", got)
	}
	e.advance(refusalLogEvery)
	e.send(t, "/slack/commands", command("T0ACME0001"), "forged")
	if got := e.log.lines("signature check failed"); got != 2 || e.log.lines("unlogged_since_last=49") != 1 {
		t.Fatalf("after a minute: %d lines, log:\n%s", got, e.log.b.String())
	}
}

// fakeFollowups records what the handler asks of the follow-ups.
type fakeFollowups struct {
	mu       sync.Mutex
	expected []string
	posts    chan string
}

func (f *fakeFollowups) Expect(id string, _ time.Time, _, _ string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expected = append(f.expected, id)
}

func (f *fakeFollowups) Post(_ context.Context, _, text string) error {
	f.posts <- text
	return nil
}

// A Share click from a workspace the CRM cannot serve is told why through
// its response_url, and a click that is passed on is watched until its
// answer is delivered.
func TestClicksAlwaysGetAnAnswer(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	v, _ := verify.New(func() time.Time { return now }, 0, secret)
	fu := &fakeFollowups{posts: make(chan string, 4)}
	pub := &fakePublisher{}
	h, err := New(v, pub, directory(), slog.New(slog.DiscardHandler), Options{Now: func() time.Time { return now }, Followups: fu})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Register(mux)
	click := func(team string) []byte {
		p, _ := json.Marshal(map[string]any{
			"type": "block_actions", "team": map[string]any{"id": team}, "user": map[string]any{"id": "U0ACME0BOB"},
			"channel": map[string]any{"id": "C0ACMESALE"}, "trigger_id": "1.2." + team,
			"actions":      []any{map[string]any{"action_id": card.ShareActionID, "value": "b1.x.y", "action_ts": "1.1"}},
			"response_url": "https://hooks.slack.com/actions/" + team + "/1/a",
		})
		return []byte(url.Values{"payload": {string(p)}}.Encode())
	}
	for team, want := range map[string]string{"T0OFF00001": MsgDisabled, "T0NOBODY01": MsgNotConnected} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, signed("/slack/interactions", click(team), now, secret))
		if w.Code != 200 {
			t.Fatalf("%s: %d", team, w.Code)
		}
		select {
		case got := <-fu.posts:
			if got != want {
				t.Errorf("%s: told %q, want %q", team, got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the clicker was told nothing", team)
		}
	}
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, signed("/slack/interactions", click("T0ACME0001"), now, secret))
	fu.mu.Lock()
	defer fu.mu.Unlock()
	if w.Code != 200 || len(pub.got) != 1 || len(fu.expected) != 1 || fu.expected[0] != pub.got[0].ev.GetEnvelope().GetEventId() {
		t.Fatalf("a served click: %d, published %d, watched %v", w.Code, len(pub.got), fu.expected)
	}
}
