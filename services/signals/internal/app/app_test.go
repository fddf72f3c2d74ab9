package app

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/bus"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	integrationv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/integration/v1"
	signalsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/signals/v1"
	slackv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/slack/v1"

	"github.com/crmslack/crmslack/services/signals/internal/burst"
	"github.com/crmslack/crmslack/services/signals/internal/matrix"
)

// fakes: the ports in memory.

type state struct {
	mu       sync.Mutex
	groups   map[string]burst.Group
	revs     map[string]uint64
	reported map[string]bool
	conflict int // the next PutGroup calls that fail with ErrConflict
}

func (s *state) Group(_ context.Context, k string) (*burst.Group, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.groups[k]
	if !ok {
		return nil, s.revs[k], nil
	}
	return &g, s.revs[k], nil
}

func (s *state) PutGroup(_ context.Context, k string, g burst.Group, rev uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conflict > 0 {
		s.conflict--
		s.revs[k]++
		return 0, ErrConflict
	}
	if s.revs[k] != rev {
		return 0, ErrConflict
	}
	s.revs[k]++
	s.groups[k] = g
	return s.revs[k], nil
}

func (s *state) DeleteGroup(_ context.Context, k string, rev uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.groups, k)
	s.revs[k]++
	return nil
}

func (s *state) Reported(_ context.Context, org, owner string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reported[org+owner], nil
}

func (s *state) MarkReported(_ context.Context, org, owner string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reported[org+owner] = true
	return nil
}

type published struct {
	subject string
	ev      bus.Event
}

type pub struct {
	mu  sync.Mutex
	out []published
}

func (p *pub) Publish(_ context.Context, subject string, ev bus.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out = append(p.out, published{subject, ev})
	return nil
}

func (p *pub) take() []published {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.out
	p.out = nil
	return out
}

type view struct{ st matrix.Settings }

func (v *view) Get(string) matrix.Settings { return v.st }
func (v *view) Set(s matrix.Settings)      { v.st = s }

type acc struct{}

func (acc) Org(string) (bool, []string, bool) { return true, []string{"T1", "T2"}, true }

type dir map[string]string // team/email → user

func (d dir) FindUser(_ context.Context, _, team, email string) (string, error) {
	return d[team+"/"+email], nil
}

type counts struct {
	mu          sync.Mutex
	results     map[string]int
	unreachable int
}

func (c *counts) Signal(r string) { c.mu.Lock(); c.results[r]++; c.mu.Unlock() }
func (c *counts) Unreachable()    { c.mu.Lock(); c.unreachable++; c.mu.Unlock() }

type fixture struct {
	svc   *Service
	state *state
	pub   *pub
	count *counts
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{
		state: &state{groups: map[string]burst.Group{}, revs: map[string]uint64{}, reported: map[string]bool{}},
		pub:   &pub{}, count: &counts{results: map[string]int{}},
	}
	f.svc = New(Config{}, nil, &view{}, acc{}, dir{"T2/alice@x.example": "U1"}, f.state, f.pub, f.count, slog.New(slog.DiscardHandler))
	return f
}

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func sig(id, owner, customer string, at time.Time) *crmv1.SalesSignal {
	return &crmv1.SalesSignal{
		Envelope: &commonv1.Envelope{EventId: id, OrgId: "o", OccurredAt: timestamppb.New(at)},
		SignalId: id, Channel: crmv1.SignalChannel_SIGNAL_CHANNEL_CHAT, Kind: "started",
		Record:      &commonv1.RecordRef{Module: "Contacts", Id: customer, Name: customer},
		RecordOwner: &commonv1.CrmUserRef{Id: "crm-" + owner, Email: owner},
		From:        customer,
	}
}

func handle(t *testing.T, f *fixture, ev *crmv1.SalesSignal) {
	t.Helper()
	if err := f.svc.HandleSignal(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
}

func delivered(t *testing.T, f *fixture, p published) {
	t.Helper()
	post := p.ev.(*slackv1.PostMessage)
	err := f.svc.HandleDelivered(context.Background(), &integrationv1.DeliverySucceeded{
		Envelope:       &commonv1.Envelope{EventId: "d-" + post.GetIdempotencyKey(), OrgId: "o"},
		IdempotencyKey: post.GetIdempotencyKey(), ChannelId: "D1", Ts: "1.1",
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestBurstIsOneMessage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for i := range 3 {
		handle(t, f, sig("e"+string(rune('1'+i)), "alice@x.example", "c1", t0.Add(time.Duration(i)*time.Second)))
	}
	out := f.pub.take()
	if len(out) != 1 || !strings.HasSuffix(out[0].subject, ".T2.post") {
		t.Fatalf("three signals before the post landed: %v", out)
	}
	post := out[0].ev.(*slackv1.PostMessage)
	if post.GetTarget().GetSlackUserId() != "U1" || post.GetIdempotencyKey() != post.GetEnvelope().GetEventId() {
		t.Fatalf("post: %v", post)
	}
	delivered(t, f, out[0])
	out = f.pub.take()
	if len(out) != 1 || !strings.Contains(out[0].ev.(*slackv1.UpdateMessage).GetText(), "3 signals") {
		t.Fatalf("after the post landed, one update showing three: %v", out)
	}
	handle(t, f, sig("e4", "alice@x.example", "c1", t0.Add(10*time.Second)))
	out = f.pub.take()
	if len(out) != 1 || out[0].ev.(*slackv1.UpdateMessage).GetTs() != "1.1" || !strings.Contains(out[0].ev.(*slackv1.UpdateMessage).GetText(), "4 signals") {
		t.Fatalf("a signal after the post landed updates it: %v", out)
	}
	// Another customer: a message of its own.
	handle(t, f, sig("e5", "alice@x.example", "c2", t0.Add(10*time.Second)))
	if out = f.pub.take(); len(out) != 1 || out[0].ev.(*slackv1.PostMessage) == nil {
		t.Fatalf("another customer's signal: %v", out)
	}
}

func TestRedeliveryAsksForTheSameCommand(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ev := sig("e1", "alice@x.example", "c1", t0)
	handle(t, f, ev)
	first := f.pub.take()
	handle(t, f, ev)
	again := f.pub.take()
	if len(again) != 1 || again[0].ev.(*slackv1.PostMessage).GetIdempotencyKey() != first[0].ev.(*slackv1.PostMessage).GetIdempotencyKey() {
		t.Fatalf("a redelivered first signal asks for the same post (the egress posts a key once): %v then %v", first, again)
	}
	// Out of the window: a new group, which still knows e1.
	handle(t, f, sig("e2", "alice@x.example", "c1", t0.Add(time.Hour)))
	f.pub.take()
	handle(t, f, ev)
	if out := f.pub.take(); len(out) != 0 {
		t.Fatalf("a replay of a signal of an earlier group published %v", out)
	}
	if f.count.results[ResultDuplicate] != 2 {
		t.Fatalf("duplicates counted %v", f.count.results)
	}
}

func TestConflictReadsBack(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.state.conflict = 1
	handle(t, f, sig("e1", "alice@x.example", "c1", t0))
	if out := f.pub.take(); len(out) != 1 {
		t.Fatalf("after a lost race, one post: %v", out)
	}
}

func TestUnreachableReportedOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for i := range 3 {
		handle(t, f, sig("n"+string(rune('1'+i)), "nobody@x.example", "c1", t0))
	}
	out := f.pub.take()
	if len(out) != 1 || out[0].subject != "integration.v1.o.signals.owner_unreachable" {
		t.Fatalf("want one report, got %v", out)
	}
	r := out[0].ev.(*signalsv1.SignalOwnerUnreachable)
	if r.GetOwner().GetEmail() != "nobody@x.example" || len(r.GetTeamIds()) != 2 {
		t.Fatalf("report: %v", r)
	}
	if f.count.results[ResultUnreachable] != 3 || f.count.unreachable != 1 {
		t.Fatalf("counted %v, %d owners", f.count.results, f.count.unreachable)
	}
}

func TestBadSignalsArePermanent(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for name, ev := range map[string]*crmv1.SalesSignal{
		"unknown kind": func() *crmv1.SalesSignal { e := sig("b1", "alice@x.example", "c1", t0); e.Kind = "voicemail"; return e }(),
		"no record":    func() *crmv1.SalesSignal { e := sig("b2", "alice@x.example", "c1", t0); e.Record = nil; return e }(),
		"no owner":     func() *crmv1.SalesSignal { e := sig("b3", "", "c1", t0); return e }(),
	} {
		if err := f.svc.HandleSignal(context.Background(), ev); !bus.IsPermanent(err) {
			t.Errorf("%s: %v, want a permanent error", name, err)
		}
	}
	if out := f.pub.take(); len(out) != 0 {
		t.Fatalf("bad signals published %v", out)
	}
}

func TestSettingsNeedAnAdmin(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, err := f.svc.UpdateCells(context.Background(), "o", Caller{User: matrix.Person{ID: "u"}}, map[matrix.Key]bool{{Channel: matrix.Call, Kind: "missed"}: false}, 0)
	if !errors.Is(err, ErrDenied) {
		t.Fatalf("a non-admin: %v", err)
	}
}
