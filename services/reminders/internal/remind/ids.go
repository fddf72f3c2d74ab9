package remind

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/blockkit"
	"github.com/crmslack/crmslack/libs/signed"
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

// ErrBadButton is returned for a button value that is not a reminder's
// signed value (forged, altered, or signed under a key no longer set).
var ErrBadButton = errors.New("remind: not a valid reminder button")

// Button is what a reminder's Snooze and Mark done buttons carry: which
// reminder they belong to and the team it was sent in. Short keys keep the
// value small.
type Button struct {
	Org      string `json:"o"`
	Activity string `json:"a"`
	Version  int64  `json:"v"`
	User     string `json:"u"`
	Offset   int32  `json:"m"`
	Snoozes  int32  `json:"s,omitempty"`
	Team     string `json:"t"`
}

// Buttons signs and checks button values with REMINDERS_BUTTON_KEY, so a
// click cannot name another user's reminder, org or team than the DM it
// came from.
type Buttons struct{ codec *signed.Codec }

// NewButtons returns the signer/checker; the first key signs, all check.
func NewButtons(keys ...[]byte) (*Buttons, error) {
	c, err := signed.New("r1", "crmslack/reminder-button", keys...)
	if err != nil {
		return nil, fmt.Errorf("reminder button key: %w", err)
	}
	return &Buttons{codec: c}, nil
}

// Seal is the button value of b.
func (bs *Buttons) Seal(b Button) (string, error) {
	v, err := bs.codec.Seal(b)
	if err != nil {
		return "", err
	}
	if len(v) > blockkit.MaxButtonValue {
		return "", fmt.Errorf("reminder button value is %d bytes, over Slack's %d", len(v), blockkit.MaxButtonValue)
	}
	return v, nil
}

// Open checks a value written by Seal. It comes back from Slack in a
// block_actions payload, so it is checked like any untrusted input.
func (bs *Buttons) Open(value string) (Button, error) {
	var b Button
	if err := bs.codec.Open(value, &b); err != nil {
		return Button{}, fmt.Errorf("%w: %w", ErrBadButton, err)
	}
	for name, v := range map[string]string{"org": b.Org, "activity": b.Activity, "user": b.User, "team": b.Team} {
		if _, err := topology.Token(v); err != nil {
			return Button{}, fmt.Errorf("%w: %s: %w", ErrBadButton, name, err)
		}
	}
	if b.Version < 0 || b.Offset < 0 || b.Snoozes < 0 {
		return Button{}, fmt.Errorf("%w: negative number", ErrBadButton)
	}
	return b, nil
}
