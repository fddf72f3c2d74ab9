package app_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/installticket"
	"github.com/crmslack/crmslack/libs/testkit"

	"github.com/crmslack/crmslack/services/teams/internal/app"
	"github.com/crmslack/crmslack/services/teams/internal/registry"
)

// rotatingSlack plays Slack's token rotation: each refresh token trades
// once, and the answer takes hold, the window in which two replicas race.
type rotatingSlack struct {
	noSlack
	hold    time.Duration
	now     func() time.Time
	calls   atomic.Int32
	refused atomic.Int32
	mu      sync.Mutex
	refresh string
	serial  int
}

func (r *rotatingSlack) Refresh(_ context.Context, token string) (app.Tokens, error) {
	r.calls.Add(1)
	time.Sleep(r.hold)
	r.mu.Lock()
	defer r.mu.Unlock()
	if token != r.refresh {
		r.refused.Add(1)
		return app.Tokens{}, &app.SlackError{Code: "invalid_refresh_token"}
	}
	r.serial++
	r.refresh = fmt.Sprintf("xoxe-1-refresh-%d", r.serial)
	return app.Tokens{AccessToken: fmt.Sprintf("xoxe.xoxb-1-access-%d", r.serial), RefreshToken: r.refresh, ExpiresAt: r.now().Add(12 * time.Hour)}, nil
}

// TestOneReplicaAtATimeRefreshesAToken: two replicas of the registry on one
// database, both finding the same rotating token due (the background loop)
// or expired (the egress asking for it), trade its refresh token once: the
// other waits for the result instead of spending the burnt token, which
// Slack would refuse and the registry would take for a dead team.
func TestOneReplicaAtATimeRefreshesAToken(t *testing.T) {
	t.Parallel()
	var ahead atomic.Int64 // the replicas' and Slack's clock, moved to make the token due
	now := func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	slack := &rotatingSlack{hold: 300 * time.Millisecond, refresh: "xoxe-1-refresh-0", now: now}
	f := newFixtureWith(t, slack)
	tickets, err := installticket.NewSigner(nil, []byte(strings.Repeat("t", 32)))
	if err != nil {
		t.Fatal(err)
	}
	replicas := []*app.Service{
		app.New(app.Config{InstallURL: "http://gw/slack/install"}, f.repo, f.pub, f.access, slack, f.keys, tickets, testkit.Logger(t), now),
		app.New(app.Config{InstallURL: "http://gw/slack/install"}, f.repo, f.pub, f.access, slack, f.keys, tickets, testkit.Logger(t), now),
	}
	ctx := testkit.Context(t)
	in := installInput("o1", "T0ROTATE01")
	in.BotToken, in.RefreshToken, in.ExpiresAt = "xoxe.xoxb-1-access-0", slack.refresh, time.Now().Add(10*time.Minute)
	if _, _, err := replicas[0].CompleteInstall(ctx, in); err != nil {
		t.Fatal(err)
	}

	race := func(do func(*app.Service) (string, error)) []string {
		var wg sync.WaitGroup
		got := make([]string, len(replicas))
		errs := make([]error, len(replicas))
		start := make(chan struct{})
		for i, r := range replicas {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				got[i], errs[i] = do(r)
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("replica %d: %v", i+1, err)
			}
		}
		return got
	}
	check := func(round int) {
		t.Helper()
		if n, refused := slack.calls.Load(), slack.refused.Load(); n != int32(round) || refused != 0 {
			t.Fatalf("round %d: Slack got %d refreshes in all, %d with a spent token; want %d, none spent", round, n, refused, round)
		}
		team, found, err := f.repo.Team(ctx, "o1", "T0ROTATE01")
		if err != nil || !found || team.Status != registry.StatusActive || team.TokenSerial != int64(round+1) {
			t.Fatalf("round %d: the team is %+v (found %v, err %v); want active, serial %d", round, team.Status, found, err, round+1)
		}
		if free, err := f.repo.ClaimRefresh(ctx, team.ID(), "probe", time.Now(), time.Now()); err != nil || !free {
			t.Fatalf("round %d: the refresh lease is still held (%v)", round, err)
		}
	}

	ahead.Store(int64(9 * time.Minute)) // a minute left of ten: due
	race(func(r *app.Service) (string, error) {
		n, err := r.RefreshDue(ctx)
		return fmt.Sprint(n), err
	})
	check(1)

	ahead.Store(int64(13 * time.Hour)) // the new token has expired
	tokens := race(func(r *app.Service) (string, error) {
		tok, err := r.GetBotToken(ctx, "o1", "T0ROTATE01")
		return tok.Token, err
	})
	check(2)
	if tokens[0] != "xoxe.xoxb-1-access-2" || tokens[1] != tokens[0] {
		t.Fatalf("the replicas hand out %q, want both the new token", tokens)
	}
}
