package targets

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var errNotFound = errors.New("users_not_found")

type fakeSlack struct {
	lookups, opens atomic.Int32
	users          map[string]string // team/email → user
	gate           chan struct{}     // when set, LookupByEmail waits on it
}

func (f *fakeSlack) LookupByEmail(ctx context.Context, team, email string) (string, error) {
	f.lookups.Add(1)
	if f.gate != nil {
		<-f.gate
	}
	if u, ok := f.users[team+"/"+email]; ok {
		return u, nil
	}
	return "", errNotFound
}

func (f *fakeSlack) OpenDM(ctx context.Context, team, user string) (string, error) {
	f.opens.Add(1)
	return "D" + user, nil
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newResolver(f *fakeSlack, c *clock) *Resolver {
	return New(f, func(err error) bool { return errors.Is(err, errNotFound) },
		Config{UserTTL: time.Hour, NotFoundTTL: time.Minute, DMTTL: 24 * time.Hour, Now: c.Now})
}

func TestResolveKinds(t *testing.T) {
	t.Parallel()
	f := &fakeSlack{users: map[string]string{"T1/alice@acme.example": "UALICE"}}
	r := newResolver(f, &clock{t: time.Unix(0, 0)})
	ctx := context.Background()
	for _, tc := range []struct {
		target Target
		want   string
	}{
		{Target{ChannelID: "C1"}, "C1"},
		{Target{UserID: "UBOB"}, "DUBOB"},
		{Target{Email: " Alice@Acme.example "}, "DUALICE"},
	} {
		got, err := r.Channel(ctx, "T1", tc.target)
		if err != nil || got != tc.want {
			t.Errorf("Channel(%v) = %q, %v; want %q", tc.target, got, err, tc.want)
		}
	}
	if _, err := r.Channel(ctx, "T1", Target{}); !errors.Is(err, ErrNoTarget) {
		t.Errorf("empty target: %v", err)
	}
	// The same email in another team is another user (or none).
	if _, err := r.Channel(ctx, "T2", Target{Email: "alice@acme.example"}); !errors.Is(err, errNotFound) {
		t.Errorf("email in another team: %v, want not found", err)
	}
}

func TestCacheAndExpiry(t *testing.T) {
	t.Parallel()
	f := &fakeSlack{users: map[string]string{"T1/alice@acme.example": "UALICE"}}
	c := &clock{t: time.Unix(0, 0)}
	r := newResolver(f, c)
	ctx := context.Background()
	for range 10 {
		if _, err := r.Channel(ctx, "T1", Target{Email: "alice@acme.example"}); err != nil {
			t.Fatal(err)
		}
	}
	if f.lookups.Load() != 1 || f.opens.Load() != 1 {
		t.Fatalf("10 resolutions made %d lookups and %d opens, want 1 and 1", f.lookups.Load(), f.opens.Load())
	}
	c.Advance(61 * time.Minute)
	if _, err := r.Channel(ctx, "T1", Target{Email: "alice@acme.example"}); err != nil {
		t.Fatal(err)
	}
	if f.lookups.Load() != 2 || f.opens.Load() != 1 {
		t.Fatalf("after the user TTL: %d lookups, %d opens; want 2 and 1 (DMs live longer)", f.lookups.Load(), f.opens.Load())
	}
}

func TestNotFoundIsCachedBriefly(t *testing.T) {
	t.Parallel()
	f := &fakeSlack{users: map[string]string{}}
	c := &clock{t: time.Unix(0, 0)}
	r := newResolver(f, c)
	ctx := context.Background()
	for range 3 {
		if _, err := r.User(ctx, "T1", "ghost@acme.example"); !errors.Is(err, errNotFound) {
			t.Fatalf("err = %v", err)
		}
	}
	if f.lookups.Load() != 1 {
		t.Fatalf("%d lookups for a cached miss, want 1", f.lookups.Load())
	}
	f.users["T1/ghost@acme.example"] = "UGHOST" // the person joined Slack
	c.Advance(2 * time.Minute)
	if u, err := r.User(ctx, "T1", "ghost@acme.example"); err != nil || u != "UGHOST" {
		t.Fatalf("after the not-found TTL: %q, %v", u, err)
	}
}

func TestOtherErrorsAreNotCached(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	api := &flakySlack{calls: &calls}
	r := New(api, func(error) bool { return false }, Config{})
	for range 3 {
		if _, err := r.User(context.Background(), "T1", "a@b.c"); err == nil {
			t.Fatal("want the transient error")
		}
	}
	if calls.Load() != 3 {
		t.Fatalf("%d calls; a transient failure must not be cached", calls.Load())
	}
}

type flakySlack struct{ calls *atomic.Int32 }

func (f *flakySlack) LookupByEmail(context.Context, string, string) (string, error) {
	f.calls.Add(1)
	return "", errors.New("http_503")
}
func (f *flakySlack) OpenDM(context.Context, string, string) (string, error) { return "", nil }

func TestConcurrentMissesShareOneCall(t *testing.T) {
	t.Parallel()
	f := &fakeSlack{users: map[string]string{"T1/a@b.c": "UA"}, gate: make(chan struct{})}
	r := newResolver(f, &clock{t: time.Unix(0, 0)})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if u, err := r.User(context.Background(), "T1", "a@b.c"); err != nil || u != "UA" {
				t.Errorf("User = %q, %v", u, err)
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	close(f.gate)
	wg.Wait()
	if n := f.lookups.Load(); n > 2 {
		t.Fatalf("%d lookups for 20 concurrent misses", n)
	}
}

func TestForgetAndBound(t *testing.T) {
	t.Parallel()
	f := &fakeSlack{users: map[string]string{"T1/a@b.c": "UA", "T2/a@b.c": "UB"}}
	c := &clock{t: time.Unix(0, 0)}
	r := New(f, nil, Config{MaxEntries: 2, Now: c.Now})
	ctx := context.Background()
	_, _ = r.User(ctx, "T1", "a@b.c")
	_, _ = r.User(ctx, "T2", "a@b.c")
	r.Forget("T1")
	_, _ = r.User(ctx, "T1", "a@b.c")
	_, _ = r.User(ctx, "T2", "a@b.c")
	if f.lookups.Load() != 3 {
		t.Fatalf("%d lookups, want 3 (T1 forgotten, T2 still cached)", f.lookups.Load())
	}
	for i := range 5 {
		_, _ = r.DM(ctx, "T1", string(rune('A'+i)))
	}
	r.mu.Lock()
	n := len(r.dms)
	r.mu.Unlock()
	if n > 2 {
		t.Fatalf("DM cache holds %d entries, bound is 2", n)
	}
}
