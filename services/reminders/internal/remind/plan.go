// Package remind is the plain core of reminders: which timers an activity
// needs, what to do when one fires, and the ids that keep both idempotent.
// It does no I/O.
package remind

import (
	"slices"
	"strconv"
	"time"

	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	remindersv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/reminders/v1"
)

// Slot is one reminder of an activity for one user: an offset in minutes
// before the start, or a snooze.
type Slot struct {
	User   string
	Offset int32
	Snooze bool
}

// Token is the slot's last subject token: the offset, or "s" for a snooze.
func (s Slot) Token() string {
	if s.Snooze {
		return "s"
	}
	return strconv.Itoa(int(s.Offset))
}

// Timer is a slot to fire at a time, for a version of the activity.
type Timer struct {
	Slot
	Version int64
	At      time.Time
	Snoozes int32
}

// Plan is what an activity change does to its timers: set (or replace)
// some, remove others.
type Plan struct {
	Set    []Timer
	Remove []Slot
}

// Enabled says whether a CRM user has reminders via Slack on.
type Enabled func(user string) bool

// Offsets are an activity's distinct, non-negative reminder offsets, in
// order. A negative offset (after the start) is not a reminder.
func Offsets(a *crmv1.Activity) []int32 {
	var out []int32
	for _, m := range a.GetReminderMinutesBefore() {
		if m >= 0 && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	slices.Sort(out)
	return out
}

// People are the activity's owner and participants who are CRM users
// (they have an id), each once, owner first.
func People(a *crmv1.Activity) []*commonv1.CrmUserRef {
	var out []*commonv1.CrmUserRef
	add := func(u *commonv1.CrmUserRef) {
		if u.GetId() == "" || slices.ContainsFunc(out, func(o *commonv1.CrmUserRef) bool { return o.GetId() == u.GetId() }) {
			return
		}
		out = append(out, u)
	}
	add(a.GetOwner())
	for _, p := range a.GetParticipants() {
		add(p)
	}
	return out
}

// Person finds a CRM user among the activity's people.
func Person(a *crmv1.Activity, user string) (*commonv1.CrmUserRef, bool) {
	i := slices.IndexFunc(People(a), func(u *commonv1.CrmUserRef) bool { return u.GetId() == user })
	if i < 0 {
		return nil, false
	}
	return People(a)[i], true
}

// DueAt is when the reminder offset minutes before the start is due.
func DueAt(a *crmv1.Activity, offset int32) time.Time {
	return a.GetStartAt().AsTime().Add(-time.Duration(offset) * time.Minute)
}

func slots(a *crmv1.Activity) []Slot {
	if a == nil || a.GetStartAt() == nil {
		return nil
	}
	var out []Slot
	for _, u := range People(a) {
		for _, o := range Offsets(a) {
			out = append(out, Slot{User: u.GetId(), Offset: o})
		}
	}
	return out
}

// PlanChange is the plan for an activity that becomes next, when it was
// prev (nil for an activity not seen before). A reminder due in the future
// is set for its time, for the people with reminders on. One already due
// fires at once if the activity is new or moved and has not started (a
// meeting booked ten minutes ahead still gets its 15-minute reminder);
// otherwise it was due before this change and is left alone, so an edit
// of the title does not remind anyone twice. Slots the change removed (a
// participant or an offset gone) lose their timers.
func PlanChange(prev *remindersv1.ActivityState, next *crmv1.Activity, enabled Enabled, now time.Time) Plan {
	var p Plan
	var prevAct *crmv1.Activity
	if prev.GetLifecycle() == remindersv1.ActivityLifecycle_ACTIVITY_LIFECYCLE_ACTIVE {
		prevAct = prev.GetActivity()
	}
	moved := prevAct == nil || !prevAct.GetStartAt().AsTime().Equal(next.GetStartAt().AsTime())
	start := next.GetStartAt().AsTime()
	nextSlots := slots(next)
	for _, s := range nextSlots {
		if !enabled(s.User) {
			continue
		}
		at := DueAt(next, s.Offset)
		switch {
		case at.After(now):
		case moved && start.After(now):
			at = now
		default:
			continue
		}
		p.Set = append(p.Set, Timer{Slot: s, Version: next.GetVersion(), At: at})
	}
	for _, s := range slots(prevAct) {
		if !slices.Contains(nextSlots, s) {
			p.Remove = append(p.Remove, s)
		}
	}
	return p
}
