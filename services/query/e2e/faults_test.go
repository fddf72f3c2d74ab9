package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/slackstandin"
	"github.com/crmslack/crmslack/libs/testkit"
)

// Whatever part is down, a /zcrm the gateway answered with "Searching…"
// ends with a message through its response_url within 10 s: the answer, or
// a clear error when the answer cannot come.
func TestDeferredCommandsAlwaysEndWithAMessage(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		opts stackOptions
		down string
		user string // bob was never looked up, so his answer needs the registry
	}{
		{"query down", stackOptions{}, "query", alice},
		{"teams down", stackOptions{}, "teams", bob},
		{"delivery down", stackOptions{queryDelay: 2 * time.Second}, "delivery", alice},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := startStack(t, c.opts)
			s.seedCRM(t)
			s.stop(t, c.down)
			sent := time.Now()
			if a := answered(t, s.slash(t, acme, acmeSales, c.user, "leads")); !strings.HasPrefix(a.Text, searching) {
				t.Fatalf("want %q at once, got %q", searching, a.Text)
			}
			ctx, cancel := context.WithTimeout(testkit.Context(t), 10*time.Second)
			defer cancel()
			msgs, err := s.standin.WaitForMessages(ctx, 1, slackstandin.MessageFilter{Team: acme, Channel: acmeSales, User: c.user, Kind: slackstandin.KindResponseURL})
			if err != nil {
				t.Fatalf("nothing through the response_url within 10 s of the command: %v", err)
			}
			m := msgs[0]
			if took := m.Time.Sub(sent); took > 10*time.Second || m.Text == "" || m.ResponseType != "ephemeral" {
				t.Fatalf("after %s: %+v", took, m)
			}
			t.Logf("%s: %q after %s", c.name, m.Text, m.Time.Sub(sent).Round(time.Millisecond))
		})
	}
}
