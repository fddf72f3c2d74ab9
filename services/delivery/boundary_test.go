package delivery_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/slackstandin"
	integrationv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/integration/v1"
	slackv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/slack/v1"
)

// TestDataBoundary: messages to a team that was never registered, was
// removed, or whose org is disabled are refused with DeliveryFailed and never
// reach Slack; so are targets outside the team. A change of access takes
// effect for the very next message.
func TestDataBoundary(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	e.setAccess("org-ok", true, acme)
	e.setAccess("org-removed", true, globex) // acme was removed: only globex left
	e.setAccess("org-disabled", false, acme)
	e.setAccess("org-flip", true, acme)
	e.start(e.config())

	type refusal struct {
		name string
		cmd  *slackv1.PostMessage
		code integrationv1.DeliveryFailureCode
	}
	email := func(org, addr string) *slackv1.PostMessage {
		c := postTo(org, acme, "", "to "+addr)
		c.Target = &slackv1.Target{Kind: &slackv1.Target_Email{Email: addr}}
		return c
	}
	refused := []refusal{
		{"org never registered", postTo("org-unknown", acme, acmeGeneral, "never registered"), integrationv1.DeliveryFailureCode_DELIVERY_FAILURE_CODE_TEAM_NOT_REGISTERED},
		{"team never registered for the org", postTo("org-ok", globex, globexDeals, "other team"), integrationv1.DeliveryFailureCode_DELIVERY_FAILURE_CODE_TEAM_NOT_REGISTERED},
		{"team removed", postTo("org-removed", acme, acmeGeneral, "removed team"), integrationv1.DeliveryFailureCode_DELIVERY_FAILURE_CODE_TEAM_NOT_REGISTERED},
		{"org disabled", postTo("org-disabled", acme, acmeGeneral, "disabled org"), integrationv1.DeliveryFailureCode_DELIVERY_FAILURE_CODE_INTEGRATION_DISABLED},
		{"channel of another team", postTo("org-ok", acme, globexDeals, "foreign channel"), integrationv1.DeliveryFailureCode_DELIVERY_FAILURE_CODE_TARGET_OUTSIDE_TEAM},
		{"user of another team", func() *slackv1.PostMessage {
			c := postTo("org-ok", acme, "", "foreign user")
			c.Target = &slackv1.Target{Kind: &slackv1.Target_SlackUserId{SlackUserId: "U0GLBX0HNK"}}
			return c
		}(), integrationv1.DeliveryFailureCode_DELIVERY_FAILURE_CODE_TARGET_OUTSIDE_TEAM},
		{"email of another team's user", email("org-ok", "hank@globex.example"), integrationv1.DeliveryFailureCode_DELIVERY_FAILURE_CODE_TARGET_NOT_FOUND},
		{"email of nobody", email("org-ok", "ghost@acme.example"), integrationv1.DeliveryFailureCode_DELIVERY_FAILURE_CODE_TARGET_NOT_FOUND},
	}
	allowed := postTo("org-ok", acme, acmeGeneral, "allowed")
	toEmail := email("org-ok", "Bob@Acme.example")
	var ids []string
	e.publish(allowed, toEmail)
	for _, r := range refused {
		e.publish(r.cmd)
		ids = append(ids, r.cmd.GetEnvelope().GetEventId())
	}
	ids = append(ids, allowed.GetEnvelope().GetEventId(), toEmail.GetEnvelope().GetEventId())
	e.out.wait(t, 20*time.Second, ids...)

	for _, r := range refused {
		f := e.out.mustFail(t, r.cmd.GetEnvelope().GetEventId())
		if f.GetCode() != r.code {
			t.Errorf("%s: code %s (%s), want %s", r.name, f.GetCode(), f.GetReason(), r.code)
		}
		if f.GetReason() == "" {
			t.Errorf("%s: no reason given", r.name)
		}
	}
	e.out.mustSucceed(t, allowed.GetEnvelope().GetEventId())
	dm := e.out.mustSucceed(t, toEmail.GetEnvelope().GetEventId())
	if !strings.HasPrefix(dm.GetChannelId(), "D") {
		t.Errorf("email target posted to %s, want Bob's DM", dm.GetChannelId())
	}

	// The flip: a message goes through, the team is removed, the next is
	// refused, the org re-adds it, the next goes through.
	first := postTo("org-flip", acme, acmeSales, "flip 1")
	e.publish(first)
	e.out.wait(t, 10*time.Second, first.GetEnvelope().GetEventId())
	e.out.mustSucceed(t, first.GetEnvelope().GetEventId())
	e.setAccess("org-flip", true) // the registry removed acme
	e.awaitAccess(t, "org-flip", false)
	second := postTo("org-flip", acme, acmeSales, "flip 2")
	e.publish(second)
	e.out.wait(t, 10*time.Second, second.GetEnvelope().GetEventId())
	if f := e.out.mustFail(t, second.GetEnvelope().GetEventId()); f.GetCode() != integrationv1.DeliveryFailureCode_DELIVERY_FAILURE_CODE_TEAM_NOT_REGISTERED {
		t.Errorf("after removal: %s", f.GetCode())
	}
	e.setAccess("org-flip", true, acme)
	e.awaitAccess(t, "org-flip", true)
	third := postTo("org-flip", acme, acmeSales, "flip 3")
	e.publish(third)
	e.out.wait(t, 10*time.Second, third.GetEnvelope().GetEventId())
	e.out.mustSucceed(t, third.GetEnvelope().GetEventId())

	// Nothing refused reached Slack.
	var texts []string
	for _, m := range e.slack.Messages(slackstandin.MessageFilter{}) {
		if !strings.HasPrefix(m.Text, "probe") {
			texts = append(texts, m.Text)
		}
	}
	want := []string{"allowed", "to Bob@Acme.example", "flip 1", "flip 3"}
	if len(texts) != len(want) {
		t.Fatalf("Slack received %q, want only %q", texts, want)
	}
	for _, w := range want {
		found := false
		for _, got := range texts {
			found = found || got == w
		}
		if !found {
			t.Errorf("Slack did not receive %q (got %q)", w, texts)
		}
	}
	// Refusals by the boundary make no call at all; the foreign channel
	// is refused by Slack itself (channel_not_found for acme's token), the
	// one call that is not a post.
	if calls := e.slack.Stats().Calls["chat.postMessage"] - e.probesPosted; calls != len(want)+1 {
		t.Errorf("%d chat.postMessage calls reached Slack, want %d", calls, len(want)+1)
	}
}

// awaitAccess polls, with probe messages to a channel of acme, until
// delivery's view of org's access to acme is allowed, instead of sleeping
// for the bucket's change to reach it.
func (e *env) awaitAccess(t *testing.T, org string, allowed bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		p := postTo(org, acme, acmeSales, fmt.Sprintf("probe %d", i))
		e.publish(p)
		e.out.wait(t, 10*time.Second, p.GetEnvelope().GetEventId())
		s, _ := e.out.get(p.GetEnvelope().GetEventId())
		if len(s) == 1 {
			e.probesPosted++
		}
		if (len(s) == 1) == allowed {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("delivery did not see org %s's access to %s become allowed=%v", org, acme, allowed)
}
