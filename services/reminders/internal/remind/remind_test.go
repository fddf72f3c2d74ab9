package remind

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	remindersv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/reminders/v1"
)

var t0 = time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC)

func activity(version int64, start time.Time, offsets ...int32) *crmv1.Activity {
	return &crmv1.Activity{
		Id: "a1", Kind: crmv1.ActivityKind_ACTIVITY_KIND_EVENT, Version: version, Subject: "Demo",
		StartAt: timestamppb.New(start), ReminderMinutesBefore: offsets,
		Owner:        &commonv1.CrmUserRef{Id: "u1", Email: "u1@x"},
		Participants: []*commonv1.CrmUserRef{{Id: "u2"}, {Id: "u1"}, {Name: "Guest, no CRM id"}},
	}
}

func active(a *crmv1.Activity) *remindersv1.ActivityState {
	return &remindersv1.ActivityState{OrgId: "o", Activity: a, Version: a.GetVersion(), Lifecycle: remindersv1.ActivityLifecycle_ACTIVITY_LIFECYCLE_ACTIVE}
}

func all(string) bool { return true }

func TestPeopleAndOffsets(t *testing.T) {
	t.Parallel()
	a := activity(1, t0, 15, -5, 0, 15, 60)
	if got := People(a); len(got) != 2 || got[0].GetId() != "u1" || got[1].GetId() != "u2" {
		t.Errorf("People = %v", got)
	}
	if got := Offsets(a); len(got) != 3 || got[0] != 0 || got[1] != 15 || got[2] != 60 {
		t.Errorf("Offsets = %v", got)
	}
}

func TestPlanChange(t *testing.T) {
	t.Parallel()
	now := t0
	cases := []struct {
		name        string
		prev        *remindersv1.ActivityState
		next        *crmv1.Activity
		enabled     Enabled
		wantSet     map[Slot]time.Time
		wantRemoved []Slot
	}{
		{
			name: "new activity: each enabled person, each offset, at start minus offset",
			next: activity(1, t0.Add(2*time.Hour), 15, 60), enabled: func(u string) bool { return u == "u1" },
			wantSet: map[Slot]time.Time{
				{User: "u1", Offset: 15}: t0.Add(105 * time.Minute),
				{User: "u1", Offset: 60}: t0.Add(60 * time.Minute),
			},
		},
		{
			name: "new activity starting in 10 minutes: the 15-minute reminder fires at once",
			next: activity(1, t0.Add(10*time.Minute), 15), enabled: all,
			wantSet: map[Slot]time.Time{{User: "u1", Offset: 15}: now, {User: "u2", Offset: 15}: now},
		},
		{
			name: "title edited after the reminder was due: nobody is reminded again",
			prev: active(activity(1, t0.Add(10*time.Minute), 15)), next: activity(2, t0.Add(10*time.Minute), 15), enabled: all,
		},
		{
			name: "moved: timers at the new time; an offset and a participant removed",
			prev: active(activity(1, t0.Add(time.Hour), 15, 30)),
			next: func() *crmv1.Activity {
				a := activity(2, t0.Add(3*time.Hour), 15)
				a.Participants = nil
				return a
			}(),
			enabled: all,
			wantSet: map[Slot]time.Time{{User: "u1", Offset: 15}: t0.Add(165 * time.Minute)},
			wantRemoved: []Slot{
				{User: "u1", Offset: 30}, {User: "u2", Offset: 15}, {User: "u2", Offset: 30},
			},
		},
		{
			name: "already started: nothing",
			next: activity(1, t0.Add(-time.Minute), 15), enabled: all,
		},
		{
			name: "no offsets: nothing",
			next: activity(1, t0.Add(time.Hour)), enabled: all,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := PlanChange(tc.prev, tc.next, tc.enabled, now)
			if len(p.Set) != len(tc.wantSet) {
				t.Fatalf("Set = %+v, want %v", p.Set, tc.wantSet)
			}
			for _, tm := range p.Set {
				want, ok := tc.wantSet[tm.Slot]
				if !ok || !tm.At.Equal(want) || tm.Version != tc.next.GetVersion() {
					t.Errorf("timer %+v, want at %v (version %d)", tm, want, tc.next.GetVersion())
				}
			}
			if len(p.Remove) != len(tc.wantRemoved) {
				t.Fatalf("Remove = %v, want %v", p.Remove, tc.wantRemoved)
			}
			for i, s := range tc.wantRemoved {
				if p.Remove[i] != s {
					t.Errorf("Remove[%d] = %v, want %v", i, p.Remove[i], s)
				}
			}
		})
	}
}

func due(version int64, user string, offset int32, at time.Time, snoozes int32) *remindersv1.ReminderDue {
	return &remindersv1.ReminderDue{ActivityId: "a1", Version: version, CrmUserId: user, OffsetMinutes: offset, DueAt: timestamppb.New(at), Snoozes: snoozes}
}

func TestDecide(t *testing.T) {
	t.Parallel()
	start := t0.Add(15 * time.Minute)
	a := activity(3, start, 15)
	ended := func(lc remindersv1.ActivityLifecycle) *remindersv1.ActivityState {
		st := active(a)
		st.Lifecycle = lc
		return st
	}
	cases := []struct {
		name   string
		st     *remindersv1.ActivityState
		due    *remindersv1.ReminderDue
		now    time.Time
		want   Action
		reason string
	}{
		{"on time", active(a), due(3, "u1", 15, t0, 0), t0.Add(300 * time.Millisecond), Send, ""},
		{"participant", active(a), due(3, "u2", 15, t0, 0), t0, Send, ""},
		{"unknown activity", nil, due(3, "u1", 15, t0, 0), t0, Drop, ReasonUnknown},
		{"cancelled", ended(remindersv1.ActivityLifecycle_ACTIVITY_LIFECYCLE_CANCELLED), due(3, "u1", 15, t0, 0), t0, Drop, ReasonCancelled},
		{"completed", ended(remindersv1.ActivityLifecycle_ACTIVITY_LIFECYCLE_COMPLETED), due(3, "u1", 15, t0, 0), t0, Drop, ReasonCompleted},
		{"no longer a participant", active(a), due(3, "u9", 15, t0, 0), t0, Drop, ReasonNotRecipient},
		{"offset removed", active(a), due(3, "u1", 30, t0.Add(-15*time.Minute), 0), t0, Drop, ReasonStale},
		{"older version, same time: speaks for the new one", active(a), due(2, "u1", 15, t0, 0), t0, Send, ""},
		{"late, not started", active(a), due(3, "u1", 15, t0, 0), t0.Add(5 * time.Minute), SendLate, ""},
		{"late, started", active(a), due(3, "u1", 15, t0, 0), start.Add(time.Second), Drop, ReasonStarted},
		{"snoozed: any offset", active(a), due(3, "u1", 99, t0, 1), t0, Send, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := Decide(tc.st, tc.due, tc.now, time.Minute)
			if v.Action != tc.want || v.Reason != tc.reason {
				t.Errorf("Decide = %+v, want %v %q", v, tc.want, tc.reason)
			}
		})
	}
	t.Run("older timer of an activity moved later is set again", func(t *testing.T) {
		t.Parallel()
		v := Decide(active(activity(4, start.Add(time.Hour), 15)), due(3, "u1", 15, t0, 0), t0, time.Minute)
		if v.Action != Reschedule || !v.At.Equal(t0.Add(time.Hour)) {
			t.Errorf("Decide = %+v", v)
		}
	})
}

func TestPostKeyIsStableAndDistinct(t *testing.T) {
	t.Parallel()
	k := PostKey("o", "a1", 3, 15, 0, "u1")
	if k != PostKey("o", "a1", 3, 15, 0, "u1") {
		t.Fatal("unstable")
	}
	for _, other := range []string{
		PostKey("o", "a1", 4, 15, 0, "u1"), PostKey("o", "a1", 3, 60, 0, "u1"),
		PostKey("o", "a1", 3, 15, 1, "u1"), PostKey("o", "a1", 3, 15, 0, "u2"),
	} {
		if other == k {
			t.Errorf("%s collides", other)
		}
	}
}

var testKey = []byte("0123456789abcdef0123456789abcdef")

func TestButtonsAreSignedAndChecked(t *testing.T) {
	t.Parallel()
	bs, err := NewButtons(testKey)
	if err != nil {
		t.Fatal(err)
	}
	b := Button{Org: "o", Activity: "a1", Version: 3, User: "u1", Offset: 15, Snoozes: 2, Team: "T1"}
	v, err := bs.Seal(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := bs.Open(v)
	if err != nil || got != b {
		t.Fatalf("Open = %+v, %v", got, err)
	}
	other, _ := NewButtons([]byte("another key, 32 bytes long......"))
	forged, _ := other.Seal(b)
	bad, _ := bs.Seal(Button{Org: "o.x", Activity: "a", User: "u", Team: "T"})
	for _, value := range []string{"", "{}", `{"o":"o","a":"a","u":"u","t":"T"}`, forged, bad, v + "x", "not json"} {
		if _, err := bs.Open(value); !errors.Is(err, ErrBadButton) {
			t.Errorf("Open(%q) = %v, want ErrBadButton", value, err)
		}
	}
	if _, err := NewButtons([]byte("short")); err == nil {
		t.Error("a short key was accepted")
	}
}

func FuzzOpenButton(f *testing.F) {
	bs, err := NewButtons(testKey)
	if err != nil {
		f.Fatal(err)
	}
	v, _ := bs.Seal(Button{Org: "o", Activity: "a1", Version: 3, User: "u1", Offset: 15, Team: "T1"})
	f.Add(v)
	f.Add(`r1.e30.AAAA`)
	f.Fuzz(func(t *testing.T, value string) {
		b, err := bs.Open(value)
		if err != nil {
			return
		}
		again, err := bs.Seal(b)
		if err != nil {
			t.Fatal(err)
		}
		if round, err := bs.Open(again); err != nil || round != b {
			t.Fatalf("round trip of %+v: %+v, %v", b, round, err)
		}
	})
}
