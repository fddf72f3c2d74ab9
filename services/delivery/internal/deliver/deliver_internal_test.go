package deliver

import (
	"testing"
	"time"

	"github.com/crmslack/crmslack/services/delivery/internal/failure"
)

func TestBackoffGrowsWithJitterAndCap(t *testing.T) {
	t.Parallel()
	d := &Deliverer{cfg: Config{BackoffBase: 100 * time.Millisecond, BackoffMax: time.Second}.withDefaults()}
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 40: time.Second} {
		for range 50 {
			if b := d.backoff(n); b < want/2 || b > want {
				t.Fatalf("backoff(%d) = %s, want within [%s, %s]", n, b, want/2, want)
			}
		}
	}
}

func TestResponseURLUsesAndLifetime(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	d := &Deliverer{cfg: Config{Now: func() time.Time { return now }}.withDefaults(), uses: map[string]*urlUses{}}
	for i := range 5 {
		if err := d.useResponseURL("u1", now); err != nil {
			t.Fatalf("use %d: %v", i+1, err)
		}
	}
	if f, ok := failure.As(d.useResponseURL("u1", now)); !ok || f.Code != failure.ResponseURLExpired {
		t.Fatal("a sixth use was allowed")
	}
	if err := d.useResponseURL("u2", now.Add(-29*time.Minute)); err != nil {
		t.Fatalf("a 29-minute-old URL: %v", err)
	}
	now = now.Add(2 * time.Minute)
	if f, ok := failure.As(d.useResponseURL("u2", now)); !ok || f.Code != failure.ResponseURLExpired {
		t.Fatal("a URL past 30 minutes was allowed")
	}
}

func TestLeaseOutlastsTheSlackCall(t *testing.T) {
	t.Parallel()
	for _, timeout := range []time.Duration{300 * time.Millisecond, 15 * time.Second} {
		c := Config{SlackTimeout: timeout}.withDefaults()
		if c.Lease <= c.SlackTimeout {
			t.Errorf("lease %s does not outlast a %s call", c.Lease, timeout)
		}
	}
}
