package slackhttp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmslack/crmslack/libs/bus"
	slackv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/slack/v1"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"

	"github.com/crmslack/crmslack/services/gateway/internal/teamdir"
	"github.com/crmslack/crmslack/services/gateway/internal/verify"
)

const secret = "test-signing-secret"

type published struct {
	subject string
	ev      bus.Event
}

type fakePublisher struct {
	mu   sync.Mutex
	got  []published
	fail error
}

func (f *fakePublisher) Publish(_ context.Context, subject string, ev bus.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.got = append(f.got, published{subject, ev})
	return nil
}

type syncedDir struct{ *teamdir.Directory }

func (syncedDir) Synced() bool { return true }

func directory() Directory {
	d := teamdir.New(slog.New(slog.DiscardHandler))
	d.Set("org1", &teamsv1.OrgAccess{OrgId: "org1", IntegrationEnabled: true, Teams: []*teamsv1.TeamAccess{
		{TeamId: "T0ACME0001", Status: teamsv1.TeamStatus_TEAM_STATUS_ACTIVE},
		{TeamId: "T0SHARED01", Status: teamsv1.TeamStatus_TEAM_STATUS_ACTIVE},
	}})
	d.Set("org2", &teamsv1.OrgAccess{OrgId: "org2", IntegrationEnabled: true, Teams: []*teamsv1.TeamAccess{
		{TeamId: "T0SHARED01", Status: teamsv1.TeamStatus_TEAM_STATUS_ACTIVE},
	}})
	d.Set("org3", &teamsv1.OrgAccess{OrgId: "org3", IntegrationEnabled: false, Teams: []*teamsv1.TeamAccess{
		{TeamId: "T0OFF00001", Status: teamsv1.TeamStatus_TEAM_STATUS_ACTIVE},
	}})
	return syncedDir{d}
}

func newHandler(t testing.TB, pub Publisher, now time.Time) http.Handler {
	t.Helper()
	v, err := verify.New(func() time.Time { return now }, 0, secret)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(v, pub, directory(), slog.New(slog.DiscardHandler), Options{MaxBody: 64 << 10, Now: func() time.Time { return now }, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Register(mux)
	return mux
}

func signed(path string, body []byte, ts time.Time, sec string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set(verify.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	r.Header.Set(verify.HeaderSignature, verify.Sign(sec, ts.Unix(), body))
	return r
}

func command(team string) []byte {
	return []byte(url.Values{
		"token": {"x"}, "team_id": {team}, "channel_id": {"C0ACMESALE"}, "user_id": {"U0ACME0BOB"},
		"command": {"/zcrm"}, "text": {"leads [last name]=[watson]"}, "response_url": {"https://hooks.slack.com/commands/T0ACME0001/1/abc"},
		"trigger_id": {"13345224609.738474920.8088930838d88f008e0"},
	}.Encode())
}

func event(team, typ, id string) []byte {
	b, _ := json.Marshal(map[string]any{
		"type": "event_callback", "team_id": team, "api_app_id": "A0CRMSLACK1", "event_id": id, "event_time": 1_800_000_000,
		"event": map[string]any{"type": typ, "tokens": map[string]any{"bot": []string{"U0ACMEBOT1"}}},
	})
	return b
}

func interaction(team string) []byte {
	p, _ := json.Marshal(map[string]any{
		"type": "block_actions", "team": map[string]any{"id": team}, "user": map[string]any{"id": "U0ACME0BOB"},
		"channel": map[string]any{"id": "C0ACMESALE"}, "container": map[string]any{"message_ts": "1700000000.000100"},
		"actions":      []any{map[string]any{"action_id": "share", "block_id": "b1", "value": "Deals:42"}},
		"response_url": "https://hooks.slack.com/actions/T0ACME0001/2/def", "trigger_id": "111.222.abc",
	})
	return []byte(url.Values{"payload": {string(p)}}.Encode())
}

func TestHandler(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	cases := []struct {
		name        string
		req         func() *http.Request
		failPublish bool
		status      int
		bodyHas     string
		subject     string // published on, "" for nothing
		org         string // envelope org of what was published
	}{
		{name: "slash command", req: func() *http.Request { return signed("/slack/commands", command("T0ACME0001"), now, secret) },
			status: 200, subject: "slack.in.v1.T0ACME0001.command", org: "org1"},
		{name: "slash command of a team shared by two orgs", req: func() *http.Request { return signed("/slack/commands", command("T0SHARED01"), now, secret) },
			status: 200, subject: "slack.in.v1.T0SHARED01.command", org: "slack:T0SHARED01"},
		{name: "slash command from an unknown team", req: func() *http.Request { return signed("/slack/commands", command("T0NOBODY01"), now, secret) },
			status: 200, bodyHas: "not connected to a CRM"},
		{name: "slash command from a disabled org", req: func() *http.Request { return signed("/slack/commands", command("T0OFF00001"), now, secret) },
			status: 200, bodyHas: "turned off"},
		{name: "forged signature", req: func() *http.Request { return signed("/slack/commands", command("T0ACME0001"), now, "wrong") },
			status: 401},
		{name: "stale timestamp", req: func() *http.Request {
			return signed("/slack/commands", command("T0ACME0001"), now.Add(-5*time.Minute-time.Second), secret)
		}, status: 401},
		{name: "no signature", req: func() *http.Request {
			return httptest.NewRequest(http.MethodPost, "/slack/commands", bytes.NewReader(command("T0ACME0001")))
		}, status: 401},
		{name: "body over the cap", req: func() *http.Request {
			return signed("/slack/commands", append(command("T0ACME0001"), bytes.Repeat([]byte("a"), 64<<10)...), now, secret)
		}, status: 413},
		{name: "signed but malformed command", req: func() *http.Request { return signed("/slack/commands", []byte("team_id=acme"), now, secret) },
			status: 400},
		{name: "publish fails: Slack should retry", req: func() *http.Request { return signed("/slack/commands", command("T0ACME0001"), now, secret) },
			failPublish: true, status: 503},
		{name: "app_uninstalled", req: func() *http.Request {
			return signed("/slack/events", event("T0ACME0001", "app_uninstalled", "Ev0001"), now, secret)
		}, status: 200, subject: "slack.in.v1.T0ACME0001.event.app_uninstalled", org: "org1"},
		{name: "app_uninstalled of a team nobody has", req: func() *http.Request {
			return signed("/slack/events", event("T0NOBODY01", "app_uninstalled", "Ev0002"), now, secret)
		}, status: 200, subject: "slack.in.v1.T0NOBODY01.event.app_uninstalled", org: "slack:T0NOBODY01"},
		{name: "tokens_revoked", req: func() *http.Request {
			return signed("/slack/events", event("T0ACME0001", "tokens_revoked", "Ev0003"), now, secret)
		}, status: 200, subject: "slack.in.v1.T0ACME0001.event.tokens_revoked", org: "org1"},
		{name: "other events are acknowledged and dropped", req: func() *http.Request {
			return signed("/slack/events", event("T0ACME0001", "message", "Ev0004"), now, secret)
		}, status: 200},
		{name: "url_verification", req: func() *http.Request {
			return signed("/slack/events", []byte(`{"type":"url_verification","challenge":"abc123"}`), now, secret)
		}, status: 200, bodyHas: "abc123"},
		{name: "unsigned url_verification", req: func() *http.Request {
			return httptest.NewRequest(http.MethodPost, "/slack/events", strings.NewReader(`{"type":"url_verification","challenge":"abc123"}`))
		}, status: 401},
		{name: "event with a team id that would change the subject", req: func() *http.Request {
			return signed("/slack/events", event("T0ACME.>", "app_uninstalled", "Ev0005"), now, secret)
		}, status: 400},
		{name: "block action", req: func() *http.Request { return signed("/slack/interactions", interaction("T0ACME0001"), now, secret) },
			status: 200, subject: "slack.in.v1.T0ACME0001.interaction", org: "org1"},
		{name: "block action from an unknown team", req: func() *http.Request {
			return signed("/slack/interactions", interaction("T0NOBODY01"), now, secret)
		}, status: 200},
		{name: "GET is not allowed", req: func() *http.Request { return httptest.NewRequest(http.MethodGet, "/slack/commands", nil) },
			status: 405},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			pub := &fakePublisher{}
			if c.failPublish {
				pub.fail = errors.New("nats: timeout")
			}
			w := httptest.NewRecorder()
			newHandler(t, pub, now).ServeHTTP(w, c.req())
			if w.Code != c.status {
				t.Fatalf("status %d, want %d (%s)", w.Code, c.status, w.Body)
			}
			if c.bodyHas != "" && !strings.Contains(w.Body.String(), c.bodyHas) {
				t.Fatalf("body %q lacks %q", w.Body, c.bodyHas)
			}
			if c.subject == "" {
				if len(pub.got) != 0 {
					t.Fatalf("published %v", pub.got)
				}
				return
			}
			if len(pub.got) != 1 || pub.got[0].subject != c.subject {
				t.Fatalf("published %v, want one on %s", pub.got, c.subject)
			}
			if got := pub.got[0].ev.GetEnvelope().GetOrgId(); got != c.org {
				t.Fatalf("envelope org %q, want %q", got, c.org)
			}
		})
	}
}

func TestUnknownTeamBeforeTheDirectoryLoaded(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	v, _ := verify.New(func() time.Time { return now }, 0, secret)
	pub := &fakePublisher{}
	h, err := New(v, pub, teamdir.New(slog.New(slog.DiscardHandler)), slog.New(slog.DiscardHandler), Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Register(mux)
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, signed("/slack/commands", command("T0ACME0001"), now, secret))
	if w.Code != 200 || w.Body.Len() != 0 || len(pub.got) != 1 || pub.got[0].ev.GetEnvelope().GetOrgId() != "slack:T0ACME0001" {
		t.Fatalf("before the directory loads, commands pass on with an unresolved org: %d %q %v", w.Code, w.Body, pub.got)
	}
}

func TestEventIDIsSlacksAcrossRetries(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	pub := &fakePublisher{}
	h := newHandler(t, pub, now)
	body := event("T0ACME0001", "app_uninstalled", "Ev0RETRY01")
	for retry := range 3 {
		r := signed("/slack/events", body, now.Add(time.Duration(retry)*time.Minute), secret)
		if retry > 0 {
			r.Header.Set("X-Slack-Retry-Num", strconv.Itoa(retry))
			r.Header.Set("X-Slack-Retry-Reason", "http_timeout")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("retry %d: %d", retry, w.Code)
		}
	}
	for _, p := range pub.got {
		ev := p.ev.(*slackv1.SlackEventReceived)
		if ev.GetEnvelope().GetEventId() != "slack-event:Ev0RETRY01" || ev.GetSlackEventId() != "Ev0RETRY01" ||
			len(ev.GetRevokedBotUserIds()) != 1 || ev.GetEventTime() != 1_800_000_000 {
			t.Fatalf("event %v", ev)
		}
	}
}
