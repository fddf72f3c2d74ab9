package deliver

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/crmslack/crmslack/services/delivery/internal/pacing"
)

// TestAgedClaimRenewedBeforeTheCall: when the waits after claiming leave
// the claim's lease too little room for a whole call (another instance
// would take it over as gone while the call runs), the claim is renewed by
// compare-and-set before the post. If the entry moved on meanwhile (it was
// taken over), this run posts nothing and reports the other's result.
func TestAgedClaimRenewedBeforeTheCall(t *testing.T) {
	t.Parallel()
	for _, takenOver := range []bool{false, true} {
		led := &renewLedger{takenOver: takenOver}
		slack := &postOnly{}
		// Each reading of the clock is 6 s after the last: the claim is
		// always older than Lease − SlackTimeout when the call could start.
		clock := &steppingClock{now: time.Unix(1_700_000_000, 0), step: 6 * time.Second}
		d := New(Config{Owner: "a", Now: clock.Now, SlackTimeout: 5 * time.Second, Lease: 10 * time.Second},
			slack, openBoundary{}, staticTokens{}, led, pacing.New(nil), mustMetrics(t), slog.New(slog.DiscardHandler))
		out, err := d.Deliver(t.Context(), postCommand(t))
		if err != nil {
			t.Fatal(err)
		}
		if out.Failure != nil {
			t.Fatalf("taken over %v: failed: %v", takenOver, out.Failure)
		}
		led.mu.Lock()
		claimed, renewed := led.claimedAt, led.renewedAt
		led.mu.Unlock()
		switch {
		case !takenOver && (slack.posts != 1 || !renewed.After(claimed)):
			t.Fatalf("%d posts, claimed at %s, renewed at %s; want the claim renewed, then one post", slack.posts, claimed, renewed)
		case takenOver && (slack.posts != 0 || !out.Duplicate || out.TS != "9.000009"):
			t.Fatalf("taken over: %d posts, outcome %+v; want none, and the other's result", slack.posts, out)
		}
	}
}

// TestHistorySearchedAroundTheClaim: an in-doubt post is looked for between
// the claim (less the clock skew) and the end of its lease (plus the skew),
// not in everything the channel received since.
func TestHistorySearchedAroundTheClaim(t *testing.T) {
	t.Parallel()
	at := time.Unix(1_700_000_000, 0)
	slack := &historyOnly{}
	d := New(Config{Owner: "a", SlackTimeout: 5 * time.Second, Lease: 10 * time.Second},
		slack, openBoundary{}, staticTokens{}, &outageLedger{}, pacing.New(nil), mustMetrics(t), slog.New(slog.DiscardHandler))
	r := &run{key: "k1", cmd: postCommand(t), entry: LedgerEntry{LedgerRecord: LedgerRecord{ClaimedAt: at}}}
	if _, err := d.findPosted(t.Context(), r, "xoxb-test", "C1"); err != nil {
		t.Fatal(err)
	}
	if want := [2]string{"1699999880.000000", "1700000130.000000"}; slack.bounds != want {
		t.Fatalf("history read between %v, want %v", slack.bounds, want)
	}
}

// renewLedger claims, then answers the renewal: done, or (takenOver) a
// conflict, after which the entry is another instance's finished post.
type renewLedger struct {
	outageLedger
	takenOver bool

	mu                   sync.Mutex
	claimedAt, renewedAt time.Time
	lost                 bool
}

func (l *renewLedger) Claim(_ context.Context, _ string, rec LedgerRecord) (LedgerEntry, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost {
		return LedgerEntry{LedgerRecord: LedgerRecord{State: StateDone, CommandID: "other", Owner: "b", Channel: "C1", TS: "9.000009"}, Revision: 3}, false, nil
	}
	l.claimedAt = rec.ClaimedAt
	return LedgerEntry{LedgerRecord: rec, Revision: 1}, true, nil
}

func (l *renewLedger) Update(_ context.Context, _ string, rec LedgerRecord, rev uint64) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.takenOver {
		l.lost = true
		return 0, ErrLedgerConflict
	}
	l.renewedAt = rec.ClaimedAt
	return rev + 1, nil
}

// historyOnly is a Slack whose history is empty; it keeps the bounds asked.
type historyOnly struct {
	Slack
	bounds [2]string
}

func (s *historyOnly) History(_ context.Context, _, _, oldest, latest, _ string) ([]HistoryMessage, string, error) {
	s.bounds = [2]string{oldest, latest}
	return nil, "", nil
}

// steppingClock moves on by step each time it is read.
type steppingClock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

func (c *steppingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.step)
	return c.now
}
