package pacing

import (
	"context"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestBurstThenRate(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	p := New(clk.Now)
	ch := Key{Name: "T1/C1", Limit: Limit{Rate: 1, Burst: 3}}

	for i := range 3 {
		if d := p.Reserve(ch); d != 0 {
			t.Fatalf("call %d within the burst waits %s, want 0", i+1, d)
		}
	}
	// The bucket is empty: the next reservations queue one second apart.
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 3 * time.Second} {
		if d := p.Reserve(ch); d != want {
			t.Fatalf("queued call %d waits %s, want %s", i+1, d, want)
		}
	}
	// Time passes past the queue; the bucket refills at one per second but
	// never beyond the burst.
	clk.Advance(3 * time.Second)
	if d := p.Reserve(ch); d != time.Second {
		t.Fatalf("after the queue drained, next waits %s, want 1s", d)
	}
	clk.Advance(time.Hour)
	for i := range 3 {
		if d := p.Reserve(ch); d != 0 {
			t.Fatalf("after an idle hour call %d waits %s, want 0 (burst refilled)", i+1, d)
		}
	}
	if d := p.Reserve(ch); d != time.Second {
		t.Fatalf("a 4th call after the refill waits %s: the bucket must not exceed its burst", d)
	}
}

func TestTierPerMinute(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	p := New(clk.Now)
	t3 := Key{Name: "T1/users.lookupByEmail", Limit: PerMinute(50)}
	for i := range 50 {
		if d := p.Reserve(t3); d != 0 {
			t.Fatalf("call %d of a tier-3 minute waits %s", i+1, d)
		}
	}
	if d, want := p.Reserve(t3), 1200*time.Millisecond; d != want {
		t.Fatalf("51st call waits %s, want %s (60s/50)", d, want)
	}
}

func TestMultipleKeysWaitForTheSlowest(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	p := New(clk.Now)
	channel := Key{Name: "T1/C1", Limit: Limit{Rate: 1, Burst: 1}}
	team := Key{Name: "T1/chat.postMessage", Limit: Limit{Rate: 10, Burst: 1}}
	if d := p.Reserve(channel, team); d != 0 {
		t.Fatalf("first call waits %s", d)
	}
	if d := p.Reserve(channel, team); d != time.Second {
		t.Fatalf("second call waits %s, want the channel's 1s", d)
	}
	// Another channel of the same team only waits for the team bucket.
	other := Key{Name: "T1/C2", Limit: Limit{Rate: 1, Burst: 1}}
	if d, want := p.Reserve(other, team), 200*time.Millisecond; d != want {
		t.Fatalf("other channel waits %s, want %s (team bucket has two reservations ahead)", d, want)
	}
}

func TestPauseHoldsOnlyThatKey(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	p := New(clk.Now)
	limited := Key{Name: "T1/C1", Limit: Limit{Rate: 100, Burst: 20}}
	free := Key{Name: "T1/C2", Limit: Limit{Rate: 100, Burst: 20}}
	p.Pause(limited, 7*time.Second)

	if d := p.Reserve(limited); d != 7*time.Second {
		t.Fatalf("paused key waits %s, want the full Retry-After 7s", d)
	}
	if d := p.Reserve(free); d != 0 {
		t.Fatalf("another key waits %s during the pause, want 0", d)
	}
	// After the pause the bucket restarts from one token, not a burst.
	if d, want := p.Reserve(limited), 7*time.Second+10*time.Millisecond; d != want {
		t.Fatalf("second call after the pause waits %s, want %s", d, want)
	}
	if got := p.PausedFor("T1/C1"); got != 7*time.Second {
		t.Fatalf("PausedFor = %s, want 7s", got)
	}
	// A shorter Retry-After does not shorten the pause.
	p.Pause(limited, time.Second)
	if got := p.PausedFor("T1/C1"); got != 7*time.Second {
		t.Fatalf("PausedFor after a shorter pause = %s, want 7s", got)
	}
	clk.Advance(8 * time.Second)
	if got := p.PausedFor("T1/C1"); got != 0 {
		t.Fatalf("PausedFor after the pause = %s", got)
	}
}

func TestPauseOnUnlimitedKey(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	p := New(clk.Now)
	k := Key{Name: "T1/chat.postMessage"}
	if d := p.Reserve(k); d != 0 {
		t.Fatalf("unlimited key waits %s", d)
	}
	p.Pause(k, 3*time.Second)
	if d := p.Reserve(k); d != 3*time.Second {
		t.Fatalf("paused unlimited key waits %s, want 3s", d)
	}
	clk.Advance(3 * time.Second)
	for range 100 {
		if d := p.Reserve(k); d != 0 {
			t.Fatalf("unlimited key after the pause waits %s", d)
		}
	}
}

func TestSweepForgetsIdleBuckets(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	p := New(clk.Now)
	busy := Key{Name: "busy", Limit: Limit{Rate: 1, Burst: 1}}
	idle := Key{Name: "idle", Limit: Limit{Rate: 1, Burst: 1}}
	paused := Key{Name: "paused", Limit: Limit{Rate: 1, Burst: 1}}
	p.Reserve(idle)
	p.Pause(paused, time.Hour)
	clk.Advance(11 * time.Minute)
	p.Reserve(busy)
	p.Sweep()
	if p.Len() != 2 {
		t.Fatalf("after sweep %d buckets, want 2 (busy and paused)", p.Len())
	}
}

func TestWaitSleepsAndHonoursCancel(t *testing.T) {
	t.Parallel()
	p := New(nil)
	k := Key{Name: "k", Limit: Limit{Rate: 50, Burst: 1}}
	start := time.Now()
	for range 3 {
		if err := p.Wait(context.Background(), k); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el < 35*time.Millisecond {
		t.Fatalf("3 calls at 50/s burst 1 took %s, want at least 40ms", el)
	}
	p.Pause(k, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.Wait(ctx, k); err == nil {
		t.Fatal("Wait on a paused key returned before its context ended")
	}
}

func TestWaitSeesPauseStartedWhileSleeping(t *testing.T) {
	t.Parallel()
	p := New(nil)
	// The sleep is long next to scheduling delays on a loaded machine, so the
	// pause below reliably starts while Wait sleeps.
	k := Key{Name: "k", Limit: Limit{Rate: 2, Burst: 1}}
	p.Reserve(k) // empty the bucket: the next Wait sleeps ~500ms
	done := make(chan time.Duration)
	start := time.Now()
	go func() {
		_ = p.Wait(context.Background(), k)
		done <- time.Since(start)
	}()
	time.Sleep(10 * time.Millisecond)
	p.Pause(k, time.Second) // a 429 seen by another caller
	if el := <-done; el < time.Second {
		t.Fatalf("Wait returned after %s, inside a pause that began while it slept", el)
	}
}

func TestLimitValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		l  Limit
		ok bool
	}{
		{Limit{}, true},
		{Limit{Rate: 1, Burst: 1}, true},
		{Limit{Rate: 1, Burst: 0}, false},
	} {
		if err := tc.l.Validate(); (err == nil) != tc.ok {
			t.Errorf("%v.Validate() = %v", tc.l, err)
		}
	}
}
