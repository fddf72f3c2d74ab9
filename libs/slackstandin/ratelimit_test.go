package slackstandin

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

func TestTierLimitAndRecovery(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	srv := startServer(t, Config{Now: clock.Now, RateLimits: RateLimits{Methods: map[string]Limit{"users.info": {Rate: 1.0 / 30, Burst: 2}}}})
	api := slackClient(t, srv, srv.IssueBotToken(acme))
	for range 2 {
		if _, err := api.GetUserInfoContext(testContext(t), alice); err != nil {
			t.Fatal(err)
		}
	}
	_, err := api.GetUserInfoContext(testContext(t), alice)
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != 30*time.Second {
		t.Fatalf("want *slack.RateLimitedError{30s}, got %#v", err)
	}
	raw := callForm(t, srv, "users.info", srv.IssueBotToken(acme), url.Values{"user": {alice}})
	if raw.status != http.StatusTooManyRequests || raw.header.Get("Retry-After") != "30" || raw.errorCode() != "ratelimited" {
		t.Fatalf("raw answer HTTP %d Retry-After %q %v", raw.status, raw.header.Get("Retry-After"), raw.body)
	}
	if got := srv.Stats().RateLimited["users.info"]; got != 2 {
		t.Fatalf("stats counted %d 429s", got)
	}
	if _, err := slackClient(t, srv, srv.IssueBotToken(globex)).GetUserInfoContext(testContext(t), ivy); err != nil {
		t.Fatalf("limits are per workspace: %v", err)
	}

	clock.Advance(rl.RetryAfter)
	if _, err := api.GetUserInfoContext(testContext(t), alice); err != nil {
		t.Fatalf("after Retry-After the call goes through: %v", err)
	}
}

func TestDefaultTier2(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	srv := startServer(t, Config{Now: clock.Now})
	api := slackClient(t, srv, srv.IssueBotToken(acme))
	for i := range 20 {
		if _, _, err := api.GetConversationsContext(testContext(t), &slack.GetConversationsParameters{}); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
	_, _, err := api.GetConversationsContext(testContext(t), &slack.GetConversationsParameters{})
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != 3*time.Second {
		t.Fatalf("the 21st Tier 2 call in a minute: %#v", err)
	}
}

func TestPostMessagePerChannelLimit(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	srv := startServer(t, Config{Now: clock.Now, RateLimits: RateLimits{PostMessagePerChannel: Limit{Rate: 1, Burst: 2}}})
	api := slackClient(t, srv, srv.IssueBotToken(acme))
	post := func(ch string) error {
		_, _, err := api.PostMessageContext(testContext(t), ch, slack.MsgOptionText("hi", false))
		return err
	}
	for range 2 {
		if err := post(sales); err != nil {
			t.Fatal(err)
		}
	}
	var rl *slack.RateLimitedError
	if err := post(sales); !errors.As(err, &rl) || rl.RetryAfter != time.Second {
		t.Fatalf("third post in a second: %#v", err)
	}
	if err := post(general); err != nil {
		t.Fatalf("other channels have their own bucket: %v", err)
	}
	st := srv.Stats()
	if st.RateLimited["chat.postMessage"] != 1 || st.RateLimitedChannels[sales] != 1 {
		t.Fatalf("stats %+v", st)
	}
	if n := len(srv.Messages(MessageFilter{Channel: sales})); n != 2 {
		t.Fatalf("a refused post is not recorded: %d", n)
	}
	clock.Advance(time.Second)
	if err := post(sales); err != nil {
		t.Fatalf("after a second: %v", err)
	}
}

func TestRateLimitsDisabled(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	api := slackClient(t, srv, srv.IssueBotToken(acme))
	for i := range 30 {
		if _, _, err := api.PostMessageContext(testContext(t), sales, slack.MsgOptionText("burst", false)); err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
	}
}

func TestBucket(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	srv, err := New(Config{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	l := Limit{Rate: 2, Burst: 3}
	steps := []struct {
		advance   time.Duration
		wantOK    bool
		wantRetry time.Duration
	}{
		{0, true, 0},
		{0, true, 0},
		{0, true, 0},
		{0, false, 500 * time.Millisecond},
		{250 * time.Millisecond, false, 250 * time.Millisecond},
		{250 * time.Millisecond, true, 0},
		{10 * time.Second, true, 0}, // refills to the burst, not beyond
		{0, true, 0},
		{0, true, 0},
		{0, false, 500 * time.Millisecond},
	}
	for i, st := range steps {
		clock.Advance(st.advance)
		srv.mu.Lock()
		rl := srv.allow("k", l)
		srv.mu.Unlock()
		if (rl == nil) != st.wantOK || (rl != nil && rl.retryAfter != st.wantRetry) {
			t.Fatalf("step %d: got %+v, want ok=%v retry=%v", i, rl, st.wantOK, st.wantRetry)
		}
	}
	if got := (&rateLimitedError{retryAfter: 200 * time.Millisecond}).retryAfterSeconds(); got != 1 {
		t.Fatalf("Retry-After rounds up to whole seconds, got %d", got)
	}
}

func TestInjectedFailures(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	api := slackClient(t, srv, srv.IssueBotToken(acme))
	srv.InjectFailures("chat.postMessage", 2, http.StatusServiceUnavailable)
	for range 2 {
		_, _, err := api.PostMessageContext(testContext(t), sales, slack.MsgOptionText("hi", false))
		var sce slack.StatusCodeError
		if !errors.As(err, &sce) || sce.Code != http.StatusServiceUnavailable {
			t.Fatalf("want a 503, got %#v", err)
		}
	}
	if n := len(srv.Messages(MessageFilter{})); n != 0 {
		t.Fatalf("failed calls have no side effect, recorded %d", n)
	}
	if _, _, err := api.PostMessageContext(testContext(t), sales, slack.MsgOptionText("hi", false)); err != nil {
		t.Fatalf("the third call succeeds: %v", err)
	}
	if st := srv.Stats(); st.Injected["chat.postMessage"] != 2 || st.Calls["chat.postMessage"] != 1 {
		t.Fatalf("stats %+v", st)
	}

	u := srv.NewResponseURL(acme, sales, alice)
	srv.InjectFailures("response_url", 1, http.StatusBadGateway)
	if a := postJSONTo(t, u, map[string]any{"text": "x"}); a.status != http.StatusBadGateway {
		t.Fatalf("response_url: HTTP %d", a.status)
	}
	wantOK(t, postJSONTo(t, u, map[string]any{"text": "x"}))
}

func TestInjectedLatency(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	srv.SetLatency("auth.test", time.Hour)
	api := slack.New(srv.IssueBotToken(acme), slack.OptionAPIURL(srv.URL()+"/api/"), slack.OptionHTTPClient(&http.Client{Timeout: 50 * time.Millisecond}))
	if _, err := api.AuthTestContext(testContext(t)); err == nil {
		t.Fatal("a slow Slack times the client out")
	}
	srv.SetLatency("auth.test", 0)
	if _, err := api.AuthTestContext(testContext(t)); err != nil {
		t.Fatalf("without latency: %v", err)
	}
}
