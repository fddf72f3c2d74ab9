// Package e2e runs /zcrm end to end, in-process: the Slack stand-in sends
// signed slash commands to the gateway, which asks the query service while
// Slack waits or says "Searching…" and lets the answer follow through the
// response_url (query's late consumer, then the delivery service, back to
// the stand-in); the team registry installs the workspace and names its
// users; the CRM's records and users arrive as events on embedded NATS.
// What Slack shows is read from the gateway's HTTP answer and from the
// stand-in, never from the bus.
package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/slackstandin"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/topology"
	"github.com/crmslack/crmslack/services/query/internal/late"
	"github.com/crmslack/crmslack/services/query/internal/render"
	"github.com/crmslack/crmslack/services/query/internal/seedset"
)

// slackDeadline is how long Slack waits for a slash command's answer.
const slackDeadline = 3 * time.Second

// The gateway's messages (services/gateway/internal/slackhttp), as the
// user reads them.
const (
	searching    = "Searching the CRM…"
	notConnected = "This Slack workspace is not connected to a CRM."
)

// answered checks what every command through the gateway must get: 200,
// JSON, ephemeral, inside Slack's deadline; and returns the answer.
func answered(t testing.TB, d *slackstandin.Delivery) answer {
	t.Helper()
	if d.StatusCode != 200 || !strings.HasPrefix(d.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("HTTP %d (%s): %s", d.StatusCode, d.Header.Get("Content-Type"), d.Body)
	}
	if d.Duration >= slackDeadline {
		t.Errorf("answered after %s: Slack has given up by then", d.Duration)
	}
	a, err := parseAnswer(d.Body)
	if err != nil {
		t.Fatal(err)
	}
	if a.ResponseType != "ephemeral" {
		t.Errorf("response_type %q: only the caller may see the answer", a.ResponseType)
	}
	if a.otherOrg {
		t.Errorf("a Share button names another org: %s", d.Body)
	}
	return a
}

// TestSlashCommandsThroughTheGateway: every example of the seed's tables
// and every refusal of issue 5, typed in Slack (the stand-in signs and
// sends them) and answered by the gateway while Slack waits, with the exact
// records in order and the total; plus the callers and requests that must
// see no data.
func TestSlashCommandsThroughTheGateway(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{})
	s.seedCRM(t)
	sent := 0 // commands the gateway accepted

	t.Run("examples", func(t *testing.T) {
		for _, ex := range seedset.Examples() {
			sent++
			t.Run(ex.Text, func(t *testing.T) {
				t.Parallel()
				a := answered(t, s.slash(t, acme, acmeSales, alice, strings.TrimPrefix(ex.Text, "/zcrm ")))
				if !slices.Equal(a.ids, ex.Want) || a.total != ex.Total {
					t.Fatalf("got %v (total %d), want %v (total %d)\n%s", a.ids, a.total, ex.Want, ex.Total, a.Text)
				}
				if !strings.Contains(string(a.Blocks), "Understood as: ") || !strings.Contains(string(a.Blocks), "Open in CRM") {
					t.Errorf("no understanding or no Open in CRM link: %s", a.Blocks)
				}
			})
		}
	})
	t.Run("refusals", func(t *testing.T) {
		for _, r := range seedset.Refusals() {
			sent++
			t.Run(r.Name, func(t *testing.T) {
				t.Parallel()
				a := answered(t, s.slash(t, acme, acmeSales, alice, r.Text))
				if !strings.Contains(a.Text, r.MessageContains) || !strings.Contains(a.shown, r.MessageContains) {
					t.Fatalf("want a refusal naming %q, got %q\n%s", r.MessageContains, a.Text, a.Blocks)
				}
				if len(a.ids) != 0 || a.total != -1 {
					t.Errorf("a refusal shows records %v (total %d)", a.ids, a.total)
				}
			})
		}
	})
	t.Run("no CRM user, no data", func(t *testing.T) {
		for _, text := range []string{"leads", "leads zylker", "leads [last name]=[watson]", "deals [amount] < [20000]", "leads [last nmae] is [x]"} {
			sent++
			a := answered(t, s.slash(t, acme, acmeSales, bob, text))
			if a.Text != render.NotACRMUserMessage+"." || len(a.ids) != 0 || a.total != -1 {
				t.Fatalf("%q as Bob: %q, records %v", text, a.Text, a.ids)
			}
			for _, leak := range []string{"Watson", "Zylker", "Last Name", "lead-", "deal-"} {
				if strings.Contains(string(a.Blocks), leak) || strings.Contains(a.Text, leak) {
					t.Errorf("%q as Bob shows %q: %s", text, leak, a.Blocks)
				}
			}
		}
	})
	t.Run("help", func(t *testing.T) {
		for _, text := range []string{"", "help"} {
			sent++
			a := answered(t, s.slash(t, acme, acmeSales, bob, text))
			if !strings.Contains(string(a.Blocks), "/zcrm leads [last name]=[watson]") || len(a.ids) != 0 {
				t.Fatalf("help %q: %s", text, a.Blocks)
			}
		}
	})
	t.Run("a workspace connected to no CRM", func(t *testing.T) {
		a := answered(t, s.slash(t, globex, globexDeals, hank, "leads"))
		if !strings.HasPrefix(a.Text, notConnected) || len(a.Blocks) != 0 {
			t.Fatalf("got %q %s", a.Text, a.Blocks)
		}
	})
	t.Run("a forged or replayed signature", func(t *testing.T) {
		for name, opt := range map[string]slackstandin.SendOption{
			"another secret":  slackstandin.WithSigningSecret("not-" + signingSecret),
			"ten minutes old": slackstandin.WithTimestamp(time.Now().Add(-10 * time.Minute)),
		} {
			d := s.slash(t, acme, acmeSales, alice, "leads", opt)
			if d.StatusCode != 401 || strings.Contains(string(d.Body), "Watson") {
				t.Errorf("%s: HTTP %d %s", name, d.StatusCode, d.Body)
			}
		}
	})

	// Each command was answered once, while Slack waited: once the
	// late-answer consumer has read them all, nothing was sent to the
	// egress and nothing reached a response_url.
	testkit.Eventually(t, testkit.DefaultTimeout, func() bool {
		return s.consumerIdle(t, topology.StreamSlackIn, late.Durable)
	}, "query's late-answer consumer has read every command")
	if n := s.countOut(t); n != 0 {
		t.Errorf("%d messages for the Slack egress after %d synchronous answers", n, sent)
	}
	if got := s.standin.Messages(slackstandin.MessageFilter{Kind: slackstandin.KindResponseURL}); len(got) != 0 {
		t.Errorf("%d response_url posts after synchronous answers: %+v", len(got), got)
	}
}

// TestLateAnswerThroughResponseURL: the query service answers the gateway
// later than its budget (the gateway's default, 1.5 s), so the caller
// reads "Searching…" inside Slack's 3 seconds, and then exactly one answer,
// with the right records, arrives through the response_url Slack gave the
// command; never a second one, neither from the late gRPC reply nor from a
// redelivery.
func TestLateAnswerThroughResponseURL(t *testing.T) {
	t.Parallel()
	s := startStack(t, stackOptions{queryDelay: 2 * time.Second})
	s.seedCRM(t)

	var cases []seedset.Example
	for _, ex := range seedset.Examples() {
		switch ex.Text {
		case "/zcrm leads [last name]=[watson]", "/zcrm leads [last name]=[watson] [lead source]=[tradeshow]", "/zcrm deals [discount] >= [15]":
			cases = append(cases, ex)
		}
	}
	if len(cases) != 3 {
		t.Fatalf("the seed examples changed: %v", cases)
	}
	ctx := testkit.Context(t)
	type sentCmd struct {
		ex  seedset.Example
		d   *slackstandin.Delivery
		err error
	}
	results := make(chan sentCmd, len(cases))
	for _, ex := range cases {
		go func() {
			d, err := s.sender.SlashCommand(ctx, s.commands, slackstandin.SlashCommand{
				TeamID: acme, ChannelID: acmeSales, UserID: alice, Command: "/zcrm", Text: strings.TrimPrefix(ex.Text, "/zcrm "),
			})
			results <- sentCmd{ex, d, err}
		}()
	}
	var cmds []sentCmd
	for range cases {
		c := <-results
		if c.err != nil {
			t.Fatalf("%s: %v", c.ex.Text, c.err)
		}
		if a := answered(t, c.d); !strings.HasPrefix(a.Text, searching) || len(a.ids) != 0 {
			t.Errorf("%s: want %q at once, got %q %s", c.ex.Text, searching, a.Text, a.Blocks)
		}
		cmds = append(cmds, c)
	}
	// The gRPC replies the gateway gave up on land 2 s after each call.
	lateReplies := time.Now().Add(2*time.Second + 250*time.Millisecond)

	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	filter := slackstandin.MessageFilter{Team: acme, Channel: acmeSales, User: alice, Kind: slackstandin.KindResponseURL}
	if _, err := s.standin.WaitForMessages(wctx, len(cmds), filter); err != nil {
		t.Fatal(err)
	}
	// Never two: once both consumers have acknowledged everything (so
	// nothing is redelivered) and the gRPC replies the gateway gave up on
	// have landed, no further post can come.
	testkit.Eventually(t, testkit.DefaultTimeout, func() bool {
		return s.consumerIdle(t, topology.StreamSlackIn, late.Durable) && s.streamSettled(t, topology.StreamSlackOut)
	}, "the late answers are handled and delivered")
	time.Sleep(time.Until(lateReplies))
	msgs := s.standin.Messages(filter)
	if len(msgs) != len(cmds) {
		t.Fatalf("%d response_url posts for %d commands: %+v", len(msgs), len(cmds), msgs)
	}
	if n := s.countOut(t); n != uint64(len(cmds)) {
		t.Errorf("%d messages for the Slack egress, want one per command (%d)", n, len(cmds))
	}

	// Each post is one command's answer: match them by their records (the
	// stand-in records which response_url was used only as its owner).
	seen := map[string]bool{}
	for _, m := range msgs {
		a := answer{ResponseType: m.ResponseType, Text: m.Text, Blocks: m.Blocks}
		if err := a.readBlocks(); err != nil {
			t.Fatal(err)
		}
		if a.ResponseType != "ephemeral" || m.ReplaceOriginal || a.otherOrg {
			t.Errorf("late answer %+v: want ephemeral, not replacing, of the seed org", m)
		}
		i := slices.IndexFunc(cmds, func(c sentCmd) bool { return slices.Equal(c.ex.Want, a.ids) && c.ex.Total == a.total })
		if i < 0 {
			t.Errorf("late answer %v (total %d) matches no command sent", a.ids, a.total)
			continue
		}
		if seen[cmds[i].ex.Text] {
			t.Errorf("%s answered twice", cmds[i].ex.Text)
		}
		seen[cmds[i].ex.Text] = true
		if !strings.Contains(string(m.Blocks), "Understood as: ") {
			t.Errorf("late answer without its understanding: %s", m.Blocks)
		}
	}
}
