package delivery_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/slackstandin"
)

// TestPacedOrderedAndIsolated: 1,000 messages to one channel under a
// per-channel limit with bursts, and 1,000 spread over 50 channels, published
// after them. Every message arrives exactly once and in order per channel,
// every 429 is honoured, and the 50-channel batch is not held up by the
// limited channel.
func TestPacedOrderedAndIsolated(t *testing.T) {
	t.Parallel()
	const (
		org     = "org-load"
		rate    = 200
		burst   = 20
		limited = 1000
		spread  = 50
		each    = 20
	)
	e := newEnv(t, envOptions{channel: slackstandin.Limit{Rate: rate, Burst: burst}})
	e.setAccess(org, true, acme)
	cfg := e.config()
	cfg.ChannelRate, cfg.ChannelBurst = rate, burst
	e.start(cfg)

	var cmds []bus.Event
	var limitedIDs, spreadIDs []string
	for i := range limited {
		c := postTo(org, acme, loadChannel(0), fmt.Sprintf("L %d", i))
		cmds = append(cmds, c)
		limitedIDs = append(limitedIDs, c.GetEnvelope().GetEventId())
	}
	for i := range each {
		for ch := 1; ch <= spread; ch++ {
			c := postTo(org, acme, loadChannel(ch), fmt.Sprintf("S %d %d", ch, i))
			cmds = append(cmds, c)
			spreadIDs = append(spreadIDs, c.GetEnvelope().GetEventId())
		}
	}
	start := time.Now()
	e.publish(cmds...)

	e.out.wait(t, 60*time.Second, spreadIDs...)
	spreadDone := time.Since(start)
	e.out.wait(t, 60*time.Second, limitedIDs...)
	limitedDone := time.Since(start)
	t.Logf("50-channel batch done after %s, limited channel after %s", spreadDone, limitedDone)

	for _, id := range append(slices.Clone(limitedIDs), spreadIDs...) {
		e.out.mustSucceed(t, id)
	}
	// Exactly once, in order, per channel, read back from Slack.
	want := make([]string, limited)
	for i := range want {
		want[i] = fmt.Sprintf("L %d", i)
	}
	if got := e.textsIn(loadChannel(0)); !slices.Equal(got, want) {
		t.Errorf("limited channel: %d messages, first out of place at %d", len(got), firstDiff(got, want))
	}
	for ch := 1; ch <= spread; ch++ {
		want := make([]string, each)
		for i := range want {
			want[i] = fmt.Sprintf("S %d %d", ch, i)
		}
		if got := e.textsIn(loadChannel(ch)); !slices.Equal(got, want) {
			t.Errorf("channel %d: got %q, want %q", ch, got, want)
		}
	}
	// Every 429 honoured; pacing keeps them rare.
	n429 := e.shim.checkRetryAfterHonoured(t)
	stats := e.slack.Stats()
	if stats.RateLimited["chat.postMessage"] != n429 {
		t.Errorf("the stand-in counted %d 429s, the shim saw %d", stats.RateLimited["chat.postMessage"], n429)
	}
	t.Logf("429s: %d (per channel %v); chat.getPermalink: %d calls, %d 429s", n429, stats.RateLimitedChannels,
		stats.Calls["chat.getPermalink"], stats.RateLimited["chat.getPermalink"])
	// 2,000 posts against chat.getPermalink's 100 a minute: after a 429 a
	// team's permalinks are skipped until the Retry-After has passed, not
	// asked for (and refused) once per post. (Calls already in flight when
	// the first 429 comes back are refused too: a few per pause.)
	if n := stats.Calls["chat.getPermalink"]; n > 500 {
		t.Errorf("%d chat.getPermalink calls for 2,000 posts: the Retry-After is not honoured", n)
	}
	if n429 > 5 {
		t.Errorf("%d 429s: delivery does not pace itself to the configured limit", n429)
	}
	// The limit was followed, not exceeded: 1,000 at 200/s with a burst
	// of 20 cannot take less than 4.9s.
	if min := time.Duration(float64(limited-burst) / rate * float64(time.Second)); limitedDone < min {
		t.Errorf("limited channel done in %s, faster than its limit allows (%s)", limitedDone, min)
	}
	// Isolation: the spread batch, published after the limited one, is
	// done while the limited channel still has a backlog. Counted, not
	// timed, so a slow machine (or -race) slows both sides alike: had the
	// limited channel held the others up, it would have been drained first.
	spreadEnd := start.Add(spreadDone)
	postedBefore := 0
	for _, m := range e.slack.Messages(slackstandin.MessageFilter{Channel: loadChannel(0)}) {
		if !m.Time.After(spreadEnd) {
			postedBefore++
		}
	}
	t.Logf("when the 50-channel batch was done the limited channel had %d of %d", postedBefore, limited)
	if postedBefore > limited*8/10 {
		t.Errorf("the limited channel had %d of %d posted before the 50-channel batch was done (%s): it was held up", postedBefore, limited, spreadDone)
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
