package delivery_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/slackstandin"
	"github.com/crmslack/crmslack/libs/testkit"

	"github.com/crmslack/crmslack/services/delivery/internal/ledger"
)

// TestPacedLanesHoldNoClaims: a command waiting for its channel's pace has
// no ledger claim yet, so a crash during the wait leaves nothing in doubt.
// (When the claim came before the wait, every paced lane held one through
// it, and after a crash each was looked up in its channel's history at
// conversations.history's tier: 150 lanes took the cluster test's survivor
// two minutes.)
func TestPacedLanesHoldNoClaims(t *testing.T) {
	t.Parallel()
	const org, channels = "org-paced", 10
	e := newEnv(t, envOptions{})
	e.setAccess(org, true, acme)
	cfg := e.config()
	cfg.ChannelRate, cfg.ChannelBurst = 0.1, 1 // a channel's second post waits 10 s
	e.start(cfg)

	var cmds []bus.Event
	var first []string
	for i := range 2 {
		for ch := range channels {
			c := postTo(org, acme, loadChannel(ch), fmt.Sprintf("P %d %d", ch, i))
			cmds = append(cmds, c)
			if i == 0 {
				first = append(first, c.GetEnvelope().GetEventId())
			}
		}
	}
	e.publish(cmds...)
	e.out.wait(t, 30*time.Second, first...)

	// Each lane now waits for its channel's pace with its second command.
	ctx := testkit.Context(t)
	kv, err := e.js.KeyValue(ctx, ledger.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	led := ledger.New(e.js, kv)
	var states map[ledger.State]int
	testkit.Eventually(t, 5*time.Second, func() bool {
		keys, err := kv.ListKeys(ctx)
		if err != nil {
			return false
		}
		states = map[ledger.State]int{}
		for k := range keys.Keys() {
			if en, err := led.Get(ctx, k); err == nil {
				states[en.State]++
			}
		}
		return states[ledger.Done] == channels && len(states) == 1
	}, "the ledger holds only the %d first posts, done, while the second ones wait for their pace: %v", channels, testkit.Lazy(func() string { return fmt.Sprint(states) }))
	if got := e.slack.Messages(slackstandin.MessageFilter{Kind: slackstandin.KindMessage}); len(got) != channels {
		t.Fatalf("%d posts in Slack during the pace, want %d", len(got), channels)
	}
}
