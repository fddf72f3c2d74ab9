package slackhttp

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	slackv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/slack/v1"

	"github.com/crmslack/crmslack/services/gateway/internal/verify"
)

// fakeAnswerer answers after delay, or fails, and records the org asked.
type fakeAnswerer struct {
	delay time.Duration
	err   error
	org   chan string
}

func (f *fakeAnswerer) Answer(ctx context.Context, org string, c SlashCommand) ([]byte, error) {
	f.org <- org
	select {
	case <-time.After(f.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if f.err != nil {
		return nil, f.err
	}
	return json.Marshal(map[string]string{"response_type": "ephemeral", "text": "1 of 1 leads: " + c.Text})
}

func TestSlashCommandAnsweredOrDeferred(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		team      string
		answerer  *fakeAnswerer
		pubFail   error
		label     string
		text      string
		deferred  bool
		published bool
	}{
		{"answered in time", "T0ACME0001", &fakeAnswerer{delay: 0}, nil, "answered", "1 of 1 leads: leads [last name]=[watson]", false, true},
		{"answered in time, record lost", "T0ACME0001", &fakeAnswerer{delay: 0}, errors.New("nats down"), "answered", "1 of 1 leads: leads [last name]=[watson]", false, false},
		{"too slow: searching, answer follows", "T0ACME0001", &fakeAnswerer{delay: time.Minute}, nil, "deferred", MsgSearching, true, true},
		{"query service down: searching, answer follows", "T0ACME0001", &fakeAnswerer{err: errors.New("unavailable")}, nil, "deferred", MsgSearching, true, true},
		{"too slow and the bus down: a clear message", "T0ACME0001", &fakeAnswerer{delay: time.Minute}, errors.New("nats down"), "publish_failed", MsgUnavailable, true, false},
		{"a team of several orgs", "T0SHARED01", &fakeAnswerer{}, nil, "several_orgs", MsgSeveralOrgs, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			now := time.Now()
			c.answerer.org = make(chan string, 1)
			pub := &fakePublisher{fail: c.pubFail}
			v, err := verify.New(func() time.Time { return now }, 0, secret)
			if err != nil {
				t.Fatal(err)
			}
			h, err := New(v, pub, directory(), slog.New(slog.DiscardHandler), Options{
				Now: func() time.Time { return now }, Registerer: prometheus.NewRegistry(),
				Answerer: c.answerer, Commands: []string{"/zcrm"}, AnswerBudget: 50 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			mux := http.NewServeMux()
			h.Register(mux)
			rec := httptest.NewRecorder()
			start := time.Now()
			mux.ServeHTTP(rec, signed("/slack/commands", command(c.team), now, secret))
			if took := time.Since(start); took > 2*time.Second {
				t.Fatalf("answered after %s: Slack would have timed out", took)
			}
			var body struct{ ResponseType, Text string }
			if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &body) != nil {
				t.Fatalf("status %d, body %q", rec.Code, rec.Body.String())
			}
			if body.Text != c.text {
				t.Fatalf("text %q, want %q", body.Text, c.text)
			}
			if c.label != "several_orgs" {
				if org := <-c.answerer.org; org != "org1" {
					t.Errorf("asked for org %q, want org1", org)
				}
			}
			pub.mu.Lock()
			defer pub.mu.Unlock()
			if got := len(pub.got) == 1; got != c.published {
				t.Fatalf("published %d commands, want published=%v", len(pub.got), c.published)
			}
			if c.published {
				ev := pub.got[0].ev.(*slackv1.SlashCommandReceived)
				if ev.GetDeferred() != c.deferred || pub.got[0].subject != "slack.in.v1.T0ACME0001.command" {
					t.Errorf("published %s deferred=%v, want deferred=%v", pub.got[0].subject, ev.GetDeferred(), c.deferred)
				}
			}
		})
	}
}

func TestOtherCommandsArePublishedNotAnswered(t *testing.T) {
	t.Parallel()
	now := time.Now()
	pub := &fakePublisher{}
	v, _ := verify.New(func() time.Time { return now }, 0, secret)
	ans := &fakeAnswerer{org: make(chan string, 1)}
	h, err := New(v, pub, directory(), slog.New(slog.DiscardHandler), Options{
		Now: func() time.Time { return now }, Answerer: ans, Commands: []string{"/other"},
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	h.Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, signed("/slack/commands", command("T0ACME0001"), now, secret))
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 || len(pub.got) != 1 || len(ans.org) != 0 {
		t.Fatalf("status %d body %q published %d asked %d", rec.Code, rec.Body.String(), len(pub.got), len(ans.org))
	}
}
