package remind

import (
	"slices"
	"time"

	remindersv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/reminders/v1"
)

// Action is what a fired reminder leads to.
type Action int

const (
	// Send posts the reminder.
	Send Action = iota + 1
	// SendLate posts it marked as late: it was due while the service (or
	// NATS) was down, and the activity has not started yet.
	SendLate
	// Drop posts nothing; Verdict.Reason says why.
	Drop
	// Reschedule sets the timer again for Verdict.At: the activity moved
	// later while this timer was already set for its old time.
	Reschedule
)

// Reasons a fired reminder is dropped, as metric labels.
const (
	ReasonUnknown      = "unknown_activity"
	ReasonCancelled    = "cancelled"
	ReasonCompleted    = "completed"
	ReasonStale        = "stale"
	ReasonNotRecipient = "not_recipient"
	ReasonStarted      = "started"
	ReasonOff          = "preference_off"
	ReasonNoTeam       = "team_unavailable"
)

// Verdict is the decision on one fired reminder.
type Verdict struct {
	Action Action
	Reason string
	// At is the new time of a Reschedule.
	At time.Time
}

// Early is how far ahead of its due time a fired reminder may be and still
// be sent: the server fires timers with up to a quarter second of slack.
const Early = time.Second

// Decide judges a fired reminder against the activity as it is now (nil
// when unknown): nothing stale may post. A reminder more than lateAfter
// past its due time is late: sent, marked, while the activity has not
// started; dropped once it has.
func Decide(st *remindersv1.ActivityState, due *remindersv1.ReminderDue, now time.Time, lateAfter time.Duration) Verdict {
	drop := func(reason string) Verdict { return Verdict{Action: Drop, Reason: reason} }
	switch st.GetLifecycle() {
	case remindersv1.ActivityLifecycle_ACTIVITY_LIFECYCLE_ACTIVE:
	case remindersv1.ActivityLifecycle_ACTIVITY_LIFECYCLE_CANCELLED:
		return drop(ReasonCancelled)
	case remindersv1.ActivityLifecycle_ACTIVITY_LIFECYCLE_COMPLETED:
		return drop(ReasonCompleted)
	default:
		return drop(ReasonUnknown)
	}
	a := st.GetActivity()
	if due.GetVersion() > st.GetVersion() {
		return drop(ReasonStale) // cannot happen: timers are set after the state is stored
	}
	if _, ok := Person(a, due.GetCrmUserId()); !ok {
		return drop(ReasonNotRecipient)
	}
	dueAt := due.GetDueAt().AsTime()
	if due.GetSnoozes() == 0 {
		if !slices.Contains(Offsets(a), due.GetOffsetMinutes()) {
			return drop(ReasonStale)
		}
		// A newer version exists whose own timer for this slot may have
		// been overwritten by this older one: this one speaks for it.
		if cur := DueAt(a, due.GetOffsetMinutes()); due.GetVersion() != st.GetVersion() && cur.After(now.Add(Early)) {
			return Verdict{Action: Reschedule, At: cur}
		}
	}
	start := a.GetStartAt().AsTime()
	if now.Sub(dueAt) > lateAfter {
		if now.Before(start) {
			return Verdict{Action: SendLate}
		}
		return drop(ReasonStarted)
	}
	return Verdict{Action: Send}
}
