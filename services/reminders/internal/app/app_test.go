package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/bus"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	remindersv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/reminders/v1"
	slackv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/slack/v1"

	"github.com/crmslack/crmslack/services/reminders/internal/remind"
)

// The fakes are in-memory versions of the ports; the adapters' real
// behaviour is exercised end to end in e2e.

type fakeActivities struct {
	mu sync.Mutex
	m  map[string]*remindersv1.ActivityState
	// conflicts makes the next Puts fail as if another replica won.
	conflicts int
}

func (f *fakeActivities) Get(_ context.Context, org, id string) (*remindersv1.ActivityState, uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.m[org+"."+id]
	if !ok {
		return nil, 0, nil
	}
	return proto.CloneOf(st), uint64(st.GetVersion()), nil
}

func (f *fakeActivities) Put(_ context.Context, st *remindersv1.ActivityState, rev uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conflicts > 0 {
		f.conflicts--
		return ErrConflict
	}
	k := st.GetOrgId() + "." + st.GetActivity().GetId()
	if cur, ok := f.m[k]; ok && uint64(cur.GetVersion()) != rev || !ok && rev != 0 {
		return ErrConflict
	}
	f.m[k] = proto.CloneOf(st)
	return nil
}

type fakePeople struct {
	mu sync.Mutex
	m  map[string][]string // org.user → activities
}

func (f *fakePeople) Add(_ context.Context, org, user, activity string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := org + "." + user
	for _, a := range f.m[k] {
		if a == activity {
			return nil
		}
	}
	f.m[k] = append(f.m[k], activity)
	return nil
}

func (f *fakePeople) Of(_ context.Context, org, user string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.m[org+"."+user]...), nil
}

type fakeTimers struct {
	mu      sync.Mutex
	set     map[string]remind.Timer // activity/user/slot
	removed []string
}

func key(activity string, s remind.Slot) string { return activity + "/" + s.User + "/" + s.Token() }

func (f *fakeTimers) Set(_ context.Context, _, activity string, t remind.Timer, _ *remindersv1.ReminderDue) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.set[key(activity, t.Slot)] = t
	return nil
}

func (f *fakeTimers) Remove(_ context.Context, _, activity string, s remind.Slot) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.set, key(activity, s))
	f.removed = append(f.removed, key(activity, s))
	return nil
}

func (f *fakeTimers) RemoveActivity(_ context.Context, _, activity string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k := range f.set {
		if strings.HasPrefix(k, activity+"/") {
			delete(f.set, k)
		}
	}
	f.removed = append(f.removed, activity+"/*")
	return nil
}

func (f *fakeTimers) RemoveUser(_ context.Context, _, user string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, t := range f.set {
		if t.User == user {
			delete(f.set, k)
		}
	}
	f.removed = append(f.removed, "*/"+user)
	return nil
}

type fakePrefs struct {
	mu sync.Mutex
	m  map[string]*remindersv1.Preferences
}

func (f *fakePrefs) Get(org, user string) (*remindersv1.Preferences, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.m[org+"."+user]
	return p, ok
}

func (f *fakePrefs) Enabled(org, user string) bool {
	p, ok := f.Get(org, user)
	return ok && p.GetEnabled()
}

func (f *fakePrefs) Set(p *remindersv1.Preferences) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[p.GetOrgId()+"."+p.GetUser().GetId()] = p
}

func (f *fakePrefs) Save(_ context.Context, p *remindersv1.Preferences) error {
	f.Set(p)
	return nil
}

type fakeAccess map[string][]string

func (f fakeAccess) TeamActive(org, team string) bool {
	for _, t := range f[org] {
		if t == team {
			return true
		}
	}
	return false
}

type fakePub struct {
	mu   sync.Mutex
	sent map[string][]bus.Event
}

func (f *fakePub) Publish(_ context.Context, subject string, ev bus.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent[subject] = append(f.sent[subject], ev)
	return nil
}

type fakeMetrics struct {
	mu      sync.Mutex
	sent    int
	late    int
	dropped map[string]int
}

func (f *fakeMetrics) Sent(late bool, _ time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent++
	if late {
		f.late++
	}
}

func (f *fakeMetrics) Dropped(reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dropped[reason]++
}

type fixture struct {
	svc     *Service
	acts    *fakeActivities
	timers  *fakeTimers
	prefs   *fakePrefs
	pub     *fakePub
	metrics *fakeMetrics
	buttons *remind.Buttons
	now     time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{
		acts: &fakeActivities{m: map[string]*remindersv1.ActivityState{}}, timers: &fakeTimers{set: map[string]remind.Timer{}},
		prefs: &fakePrefs{m: map[string]*remindersv1.Preferences{}}, pub: &fakePub{sent: map[string][]bus.Event{}},
		metrics: &fakeMetrics{dropped: map[string]int{}}, now: time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC),
	}
	buttons, err := remind.NewButtons([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	f.buttons = buttons
	f.svc = New(Config{Now: func() time.Time { return f.now }, Buttons: buttons}, Deps{
		Activities: f.acts, People: &fakePeople{m: map[string][]string{}}, Timers: f.timers, Preferences: f.prefs, PrefStore: f.prefs,
		Access: fakeAccess{"o": {"T1"}}, Publisher: f.pub, Metrics: f.metrics,
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return f
}

func (f *fixture) on(t *testing.T, user string) {
	t.Helper()
	_, err := f.svc.SetPreferences(context.Background(), &remindersv1.SetPreferencesRequest{
		OrgId: "o", User: &commonv1.CrmUserRef{Id: user, Email: user + "@x"}, Enabled: true, TeamId: "T1",
	})
	if err != nil {
		t.Fatal(err)
	}
}

func env() *commonv1.Envelope { return &commonv1.Envelope{EventId: "e", OrgId: "o"} }

func act(version int64, start time.Time) *crmv1.Activity {
	return &crmv1.Activity{
		Id: "a1", Kind: crmv1.ActivityKind_ACTIVITY_KIND_TASK, Version: version, Subject: "Call back",
		StartAt: timestamppb.New(start), ReminderMinutesBefore: []int32{15},
		Owner: &commonv1.CrmUserRef{Id: "u1", Email: "u1@x"}, Participants: []*commonv1.CrmUserRef{{Id: "u2"}},
	}
}

func TestActivityEventsKeepTheNewestVersion(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.on(t, "u1")
	ctx := context.Background()
	f.acts.conflicts = 2 // two replicas race; compare-and-set retries
	if err := f.svc.HandleActivityScheduled(ctx, &crmv1.ActivityScheduled{Envelope: env(), Activity: act(2, f.now.Add(time.Hour))}); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.HandleActivityUpdated(ctx, &crmv1.ActivityUpdated{Envelope: env(), Activity: act(1, f.now.Add(2*time.Hour))}); err != nil {
		t.Fatal(err)
	}
	st, _, _ := f.acts.Get(ctx, "o", "a1")
	if st.GetVersion() != 2 {
		t.Errorf("stored version %d, want 2", st.GetVersion())
	}
	tm, ok := f.timers.set["a1/u1/15"]
	if !ok || !tm.At.Equal(f.now.Add(45*time.Minute)) || len(f.timers.set) != 1 {
		t.Errorf("timers %v: want u1's only (u2 has reminders off), at the newer time", f.timers.set)
	}
	if err := f.svc.HandleActivityCancelled(ctx, &crmv1.ActivityCancelled{Envelope: env(), ActivityId: "a1", Version: 1}); err != nil {
		t.Fatal(err)
	}
	if len(f.timers.set) != 1 {
		t.Error("an older cancel removed the timers")
	}
	if err := f.svc.HandleActivityCompleted(ctx, &crmv1.ActivityCompleted{Envelope: env(), ActivityId: "a1", Version: 3}); err != nil {
		t.Fatal(err)
	}
	if len(f.timers.set) != 0 {
		t.Errorf("timers left after completion: %v", f.timers.set)
	}
}

func TestBadActivitiesArePermanentFailures(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for name, a := range map[string]*crmv1.Activity{
		"no activity":  nil,
		"dotted id":    {Id: "a.1", Version: 1, StartAt: timestamppb.Now()},
		"no version":   {Id: "a1", StartAt: timestamppb.Now()},
		"no start":     {Id: "a1", Version: 1},
		"bad owner id": {Id: "a1", Version: 1, StartAt: timestamppb.Now(), Owner: &commonv1.CrmUserRef{Id: "u 1"}},
	} {
		err := f.svc.HandleActivityScheduled(context.Background(), &crmv1.ActivityScheduled{Envelope: env(), Activity: a})
		if !bus.IsPermanent(err) {
			t.Errorf("%s: %v, want a permanent error", name, err)
		}
	}
}

func TestFiredReminderChecksPreferencesAndTeam(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	f.on(t, "u1")
	if err := f.svc.HandleActivityScheduled(ctx, &crmv1.ActivityScheduled{Envelope: env(), Activity: act(1, f.now.Add(15*time.Minute))}); err != nil {
		t.Fatal(err)
	}
	due := func(user string) *remindersv1.ReminderDue {
		return &remindersv1.ReminderDue{Envelope: env(), ActivityId: "a1", Version: 1, CrmUserId: user, OffsetMinutes: 15, DueAt: timestamppb.New(f.now)}
	}
	for _, u := range []string{"u1", "u2"} {
		if err := f.svc.HandleReminderDue(ctx, due(u)); err != nil {
			t.Fatal(err)
		}
	}
	posts := f.pub.sent["slack.out.v1.o.T1.post"]
	if len(posts) != 1 || f.metrics.dropped[remind.ReasonOff] != 1 {
		t.Fatalf("posts %d, dropped %v: want u1's only", len(posts), f.metrics.dropped)
	}
	p := posts[0].(*slackv1.PostMessage)
	if p.GetTarget().GetEmail() != "u1@x" || p.GetIdempotencyKey() != "reminder/o/a1/v1/15/u1" || !strings.Contains(string(p.GetBlocksJson()), remind.ActionDone) {
		t.Errorf("post %+v", p)
	}
	// The team left the org: nothing more reaches it.
	f.prefs.Set(&remindersv1.Preferences{OrgId: "o", User: &commonv1.CrmUserRef{Id: "u1", Email: "u1@x"}, Enabled: true, TeamId: "T9"})
	if err := f.svc.HandleReminderDue(ctx, due("u1")); err != nil {
		t.Fatal(err)
	}
	if f.metrics.dropped[remind.ReasonNoTeam] != 1 {
		t.Errorf("dropped %v", f.metrics.dropped)
	}
}

func TestButtonsAreCheckedAndAnswered(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	f.on(t, "u1")
	if err := f.svc.HandleActivityScheduled(ctx, &crmv1.ActivityScheduled{Envelope: env(), Activity: act(1, f.now.Add(15*time.Minute))}); err != nil {
		t.Fatal(err)
	}
	value, err := f.buttons.Seal(remind.Button{Org: "o", Activity: "a1", Version: 1, User: "u1", Offset: 15, Team: "T1"})
	if err != nil {
		t.Fatal(err)
	}
	click := func(action, value, org, team string) {
		t.Helper()
		ev := &slackv1.InteractionReceived{Envelope: &commonv1.Envelope{EventId: "slack-interaction:" + action + team, OrgId: org},
			TeamId: team, ActionId: action, Value: value, ResponseUrl: "https://hooks.slack.com/x"}
		if err := f.svc.HandleInteraction(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	click("card_share", value, "o", "T1")               // not ours
	click(remind.ActionSnooze, "{bad", "o", "T1")       // not a reminder's value
	click(remind.ActionSnooze, value, "o", "T2")        // another team than it was sent to
	click(remind.ActionSnooze, value, "other", "T1")    // another org's team
	click(remind.ActionSnooze, value, "slack:T9", "T9") // a team the org does not reach
	if len(f.pub.sent) != 0 || len(f.timers.set) != 1 {
		t.Fatalf("ignored clicks had effects: %v %v", f.pub.sent, f.timers.set)
	}

	click(remind.ActionSnooze, value, "o", "T1")
	tm, ok := f.timers.set["a1/u1/s"]
	if !ok || !tm.At.Equal(f.now.Add(10*time.Minute)) || tm.Snoozes != 1 {
		t.Errorf("snooze timer %+v", tm)
	}
	click(remind.ActionDone, value, "o", "T1")
	cmds := f.pub.sent["crm.v1.o.command.activity.complete"]
	if len(cmds) != 1 || cmds[0].(*crmv1.CompleteActivityRequested).GetRequestedBy().GetId() != "u1" {
		t.Errorf("commands %v", cmds)
	}
	if n := len(f.pub.sent["slack.out.v1.o.T1.respond"]); n != 2 {
		t.Errorf("%d answers, want 2", n)
	}

	if err := f.svc.HandleActivityCancelled(ctx, &crmv1.ActivityCancelled{Envelope: env(), ActivityId: "a1", Version: 2}); err != nil {
		t.Fatal(err)
	}
	click(remind.ActionSnooze, value, "o", "T1")
	answers := f.pub.sent["slack.out.v1.o.T1.respond"]
	if txt := answers[len(answers)-1].(*slackv1.RespondToURL).GetText(); !strings.Contains(txt, "cancelled") {
		t.Errorf("answer to a snooze of a cancelled task: %q", txt)
	}
}

func TestSetPreferencesOffRemovesTimers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	f.on(t, "u1")
	f.on(t, "u2")
	if err := f.svc.HandleActivityScheduled(ctx, &crmv1.ActivityScheduled{Envelope: env(), Activity: act(1, f.now.Add(time.Hour))}); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.SetPreferences(ctx, &remindersv1.SetPreferencesRequest{OrgId: "o", User: &commonv1.CrmUserRef{Id: "u2"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.timers.set["a1/u2/15"]; ok || len(f.timers.set) != 1 {
		t.Errorf("timers %v", f.timers.set)
	}
	f.on(t, "u2") // on again: the upcoming activity is scheduled for u2 again
	if _, ok := f.timers.set["a1/u2/15"]; !ok {
		t.Errorf("turning on did not schedule the upcoming activity: %v", f.timers.set)
	}
	_, err = f.svc.SetPreferences(ctx, &remindersv1.SetPreferencesRequest{OrgId: "o", User: &commonv1.CrmUserRef{Id: "u2", Email: "e"}, Enabled: true, TeamId: "T9"})
	if !errors.Is(err, ErrPrecondition) {
		t.Errorf("another org's team: %v", err)
	}
}
