package remind

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/blockkit"
	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	remindersv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/reminders/v1"
)

// TimerID is the event id of a timer's payload: the reminder it names, the
// activity version and the snooze count. A slot and a version fire under
// one id however often the timer is set.
func TimerID(org, activity string, t Timer) string {
	return fmt.Sprintf("reminder:%s:%s:%d:%s:%s:%d", org, activity, t.Version, t.Token(), t.User, t.Snoozes)
}

// Producer names the reminders service in the envelopes it writes.
const Producer = "reminders"

// Due is the payload a timer fires with: which reminder, not its content.
func Due(org, activity string, t Timer, offset int32, dueAt, now time.Time) *remindersv1.ReminderDue {
	return &remindersv1.ReminderDue{
		Envelope: &commonv1.Envelope{
			EventId: TimerID(org, activity, t), OrgId: org, OccurredAt: timestamppb.New(now),
			SchemaVersion: 1, Producer: Producer,
		},
		ActivityId: activity, Version: t.Version, CrmUserId: t.User,
		OffsetMinutes: offset, DueAt: timestamppb.New(dueAt), Snoozes: t.Snoozes,
	}
}

// PostKey is the idempotency key of a reminder's post: activity, version,
// offset (or snooze number) and user. However often the fired reminder is
// handled, by however many replicas, the egress posts it once.
func PostKey(org, activity string, version int64, offset, snoozes int32, user string) string {
	slot := strconv.Itoa(int(offset))
	if snoozes > 0 {
		slot += "s" + strconv.Itoa(int(snoozes))
	}
	return fmt.Sprintf("reminder/%s/%s/v%d/%s/%s", org, activity, version, slot, user)
}

// Action ids of the reminder's buttons.
const (
	ActionSnooze = "reminder_snooze"
	ActionDone   = "reminder_done"
	// ActionOpen is the "Open in CRM" link button; Slack sends a click on
	// it too, which needs no answer.
	ActionOpen = "reminder_open"
)

// ErrBadButton is returned for a button value that is not a reminder's.
var ErrBadButton = errors.New("remind: invalid reminder button value")

// Button is what a reminder's Snooze and Mark done buttons carry: which
// reminder they belong to. Short keys keep the value small.
type Button struct {
	Org      string `json:"o"`
	Activity string `json:"a"`
	Version  int64  `json:"v"`
	User     string `json:"u"`
	Offset   int32  `json:"m"`
	Snoozes  int32  `json:"s,omitempty"`
}

// Encode is the button value.
func (b Button) Encode() string {
	out, _ := json.Marshal(b) // strings and integers always marshal
	return string(out)
}

// ParseButton reads a value written by Encode. It comes back from Slack in
// a block_actions payload, so it is checked like any untrusted input.
func ParseButton(value string) (Button, error) {
	if len(value) > blockkit.MaxButtonValue {
		return Button{}, fmt.Errorf("%w: %d bytes", ErrBadButton, len(value))
	}
	var b Button
	if err := json.Unmarshal([]byte(value), &b); err != nil {
		return Button{}, fmt.Errorf("%w: %w", ErrBadButton, err)
	}
	for name, v := range map[string]string{"org": b.Org, "activity": b.Activity, "user": b.User} {
		if _, err := topology.Token(v); err != nil {
			return Button{}, fmt.Errorf("%w: %s: %w", ErrBadButton, name, err)
		}
	}
	if b.Version < 0 || b.Offset < 0 || b.Snoozes < 0 {
		return Button{}, fmt.Errorf("%w: negative number", ErrBadButton)
	}
	return b, nil
}
