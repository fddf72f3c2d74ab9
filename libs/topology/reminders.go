package topology

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamReminders holds the reminders service's timers: JetStream message
// schedules the server itself fires, and the due reminders they fire.
const StreamReminders = "REMINDERS"

// Buckets of the reminders service.
const (
	// BucketReminderActivities keeps each activity's latest state
	// (reminders.v1.ActivityState) under <org>.<activity id>.
	BucketReminderActivities = "reminder_activities"
	// BucketReminderPreferences mirrors each user's reminder preferences
	// (reminders.v1.Preferences) under <org>.<crm user id>, for every
	// replica to follow in memory.
	BucketReminderPreferences = "reminder_preferences"
	// BucketReminderPeople lists the activities each CRM user takes part
	// in, under <org>.<user>.<activity>.
	BucketReminderPeople = "reminder_people"
)

// ReminderDueTTL is how long a fired reminder stays in the stream: a
// reminders service down for longer than this loses its late reminders
// (they are worth nothing by then; the CRM stream keeps a week too).
const ReminderDueTTL = 7 * 24 * time.Hour

// RemindersStream is the REMINDERS stream: message schedules on, kept
// without age limit (a timer may be months ahead; each fires once and is
// then removed by the server), fired reminders expiring after
// ReminderDueTTL through their per-message TTL.
func RemindersStream(o StreamOptions) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:              StreamReminders,
		Description:       "Reminder timers (message schedules) and the reminders they fire",
		Subjects:          []string{"reminders.v1.>"},
		Retention:         jetstream.LimitsPolicy,
		Storage:           o.Storage,
		Replicas:          max(o.Replicas, 1),
		Duplicates:        DuplicateWindow,
		Discard:           jetstream.DiscardOld,
		AllowMsgSchedules: true,
		AllowMsgTTL:       true,
		// Required by schedules: publishing a timer again replaces it.
		AllowRollup: true,
	}
}

// ReminderTimer is the schedule subject of one reminder: the activity's
// reminder slot (offset minutes, or "s" for a snooze) for one CRM user.
// Publishing to it again replaces the timer.
func ReminderTimer(org, activity, user, slot string) string {
	return "reminders.v1." + org + ".timer." + activity + "." + user + "." + slot
}

// ReminderActivityTimers matches every timer of one activity.
func ReminderActivityTimers(org, activity string) string {
	return "reminders.v1." + org + ".timer." + activity + ".>"
}

// ReminderUserTimers matches every timer of one user in an org.
func ReminderUserTimers(org, user string) string {
	return "reminders.v1." + org + ".timer.*." + user + ".*"
}

// ReminderDue is the subject timers fire into.
func ReminderDue(org string) string { return "reminders.v1." + org + ".due" }

// ActivityCommand is the subject of a command the CRM consumes about an
// activity; command is e.g. "complete" (crm.v1.CompleteActivityRequested).
func ActivityCommand(org, command string) string {
	return "crm.v1." + org + ".command.activity." + command
}
