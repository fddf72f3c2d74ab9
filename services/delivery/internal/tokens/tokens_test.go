package tokens

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/crmslack/crmslack/services/delivery/internal/failure"
)

type fakeRegistry struct {
	mu      sync.Mutex
	gets    int
	expires time.Time
	err     error
	reports []string
}

func (f *fakeRegistry) GetBotToken(_ context.Context, org, team string) (string, time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	if f.err != nil {
		return "", time.Time{}, f.err
	}
	return "xoxb-" + team, f.expires, nil
}

func (f *fakeRegistry) ReportTokenFailure(_ context.Context, org, team, code string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reports = append(f.reports, code)
	return true, nil
}

func TestCacheRenewsBeforeExpiry(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	reg := &fakeRegistry{expires: now.Add(20 * time.Minute)}
	c := New(reg, clock)
	ctx := context.Background()
	for range 5 {
		if tok, err := c.Get(ctx, "o1", "T1"); err != nil || tok != "xoxb-T1" {
			t.Fatalf("Get = %q, %v", tok, err)
		}
	}
	if reg.gets != 1 {
		t.Fatalf("%d registry calls for 5 Gets", reg.gets)
	}
	now = now.Add(16 * time.Minute) // within the 5-minute margin of expiry
	_, _ = c.Get(ctx, "o1", "T1")
	if reg.gets != 2 {
		t.Fatalf("token near expiry not renewed (%d calls)", reg.gets)
	}
	refreshed, err := c.ReportFailure(ctx, "o1", "T1", "token_expired")
	if err != nil || !refreshed || len(reg.reports) != 1 {
		t.Fatalf("ReportFailure = %v, %v (%v)", refreshed, err, reg.reports)
	}
	_, _ = c.Get(ctx, "o1", "T1")
	if reg.gets != 3 {
		t.Fatal("a reported token was not dropped from the cache")
	}
}

func TestRegistryErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want failure.Code
	}{
		{status.Error(codes.NotFound, "no team"), failure.TeamNotRegistered},
		{status.Error(codes.FailedPrecondition, "broken"), failure.Auth},
		{status.Error(codes.Unavailable, "down"), 0},
	} {
		c := New(&fakeRegistry{err: tc.err}, nil)
		_, err := c.Get(context.Background(), "o1", "T1")
		f, ok := failure.As(err)
		switch {
		case tc.want == 0 && ok:
			t.Errorf("%v became a failure %v; it is temporary", tc.err, f.Code)
		case tc.want != 0 && (!ok || f.Code != tc.want):
			t.Errorf("%v: got %v, want %v", tc.err, err, tc.want)
		}
		if err == nil || !errors.Is(err, tc.err) && status.Code(err) != status.Code(tc.err) {
			t.Errorf("%v: cause lost: %v", tc.err, err)
		}
	}
}
