package deliver

import (
	"testing"
	"time"
)

func TestLinkBases(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	l := newLinkBases(func() time.Time { return now })
	if got := l.build("T1", "C1", "1700000000.000100", ""); got != "" {
		t.Fatalf("built %q before learning", got)
	}
	l.learn("T1", "C1", "1700000000.000100", "", "https://acme.slack.com/archives/C1/p1700000000000100")
	for _, c := range []struct{ channel, ts, thread, want string }{
		{"C2", "1700000001.000200", "", "https://acme.slack.com/archives/C2/p1700000001000200"},
		{"C2", "1700000001.000200", "1700000001.000200", "https://acme.slack.com/archives/C2/p1700000001000200"},
		{"C2", "1700000002.000300", "1700000001.000200", "https://acme.slack.com/archives/C2/p1700000002000300?thread_ts=1700000001.000200&cid=C2"},
	} {
		if got := l.build("T1", c.channel, c.ts, c.thread); got != c.want {
			t.Errorf("build(%s, %s, %s) = %q, want %q", c.channel, c.ts, c.thread, got, c.want)
		}
	}
	if got := l.build("T2", "C1", "1.000001", ""); got != "" {
		t.Errorf("another team's link built from T1's base: %q", got)
	}
	// An answer in a format not ours is not learnt.
	l.learn("T3", "C1", "1700000000.000100", "", "https://example.com/x/C1/1700000000.000100")
	if got := l.build("T3", "C1", "1.000001", ""); got != "" {
		t.Errorf("learnt a base from a link of another format: %q", got)
	}
	now = now.Add(linkBaseTTL + time.Second)
	if got := l.build("T1", "C1", "1.000001", ""); got != "" {
		t.Errorf("an expired base was used: %q", got)
	}
}
