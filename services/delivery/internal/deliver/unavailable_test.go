package deliver

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	slackv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/slack/v1"
	"github.com/crmslack/crmslack/services/delivery/internal/command"
	"github.com/crmslack/crmslack/services/delivery/internal/pacing"
)

// TestLedgerOutageSpendsNoAttempts: a ledger out of reach for more tries
// than MaxAttempts (a JetStream leader election) delays the post and fails
// nothing; the attempts are kept for Slack's own errors.
func TestLedgerOutageSpendsNoAttempts(t *testing.T) {
	t.Parallel()
	led := &outageLedger{failures: 5}
	slack := &postOnly{}
	d := New(Config{Owner: "test", MaxAttempts: 2}, slack, openBoundary{}, staticTokens{}, led, pacing.New(nil), mustMetrics(t), slog.New(slog.DiscardHandler))
	out, err := d.Deliver(t.Context(), postCommand(t))
	if err != nil {
		t.Fatal(err)
	}
	if out.Failure != nil || slack.posts != 1 || out.Attempts != 1 {
		t.Fatalf("outcome %+v after %d posts; want posted once, on the first attempt", out, slack.posts)
	}
}

func mustMetrics(t *testing.T) *Metrics {
	t.Helper()
	m, err := NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func postCommand(t *testing.T) *command.Command {
	t.Helper()
	b, err := proto.Marshal(&slackv1.PostMessage{
		Envelope: &commonv1.Envelope{EventId: "e1", OrgId: "o1"}, TeamId: "T1", Text: "hi",
		Target: &slackv1.Target{Kind: &slackv1.Target_ChannelId{ChannelId: "C1"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := command.Decode("slack.out.v1.o1.T1.post", b)
	if err != nil {
		t.Fatal(err)
	}
	return cmd
}

// outageLedger fails its first claims as out of reach, then works.
type outageLedger struct {
	mu       sync.Mutex
	failures int
}

func (l *outageLedger) Claim(_ context.Context, _ string, rec LedgerRecord) (LedgerEntry, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failures > 0 {
		l.failures--
		return LedgerEntry{}, false, fmt.Errorf("claiming: %w: nats: no response from stream", ErrUnavailable)
	}
	return LedgerEntry{LedgerRecord: rec, Revision: 1}, true, nil
}

func (l *outageLedger) Update(context.Context, string, LedgerRecord, uint64) (uint64, error) {
	return 2, nil
}

func (l *outageLedger) UpdateAsync(context.Context, string, LedgerRecord, uint64) (func() (uint64, error), error) {
	return func() (uint64, error) { return 2, nil }, nil
}

func (l *outageLedger) Release(context.Context, string, uint64) error { return nil }

// postOnly is a Slack that accepts posts; nothing else is called here.
type postOnly struct {
	Slack
	posts int
}

func (s *postOnly) PostMessage(_ context.Context, _ string, m Post) (string, string, error) {
	s.posts++
	return m.Channel, "1.000001", nil
}

type openBoundary struct{}

func (openBoundary) Check(string, string) error { return nil }

type staticTokens struct{}

func (staticTokens) Get(context.Context, string, string) (string, error) { return "xoxb-test", nil }
func (staticTokens) ReportFailure(context.Context, string, string, string) (bool, error) {
	return false, nil
}
