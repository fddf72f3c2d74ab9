// Package app is reminders' application layer: it applies activity events
// to the activity state and the timers, judges each fired reminder
// against the activity as it is now and hands the message to the Slack
// egress, answers the Snooze and Mark done buttons, and keeps users'
// preferences. It declares the ports it needs; adapters implement them.
package app

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/crmslack/crmslack/libs/bus"
	remindersv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/reminders/v1"

	"github.com/crmslack/crmslack/services/reminders/internal/remind"
)

// Activities is the store of activity states, written with
// compare-and-set.
type Activities interface {
	// Get returns the state and its revision; nil and 0 when unknown.
	Get(ctx context.Context, org, activity string) (*remindersv1.ActivityState, uint64, error)
	// Put stores st if the revision is still rev, else wraps ErrConflict.
	Put(ctx context.Context, st *remindersv1.ActivityState, rev uint64) error
}

// ErrConflict is what Activities.Put wraps when the state moved on.
var ErrConflict = errors.New("conflict")

// People lists the activities each user takes part in.
type People interface {
	Add(ctx context.Context, org, user, activity string) error
	Of(ctx context.Context, org, user string) ([]string, error)
}

// Timers sets and removes reminder timers.
type Timers interface {
	Set(ctx context.Context, org, activity string, t remind.Timer, due *remindersv1.ReminderDue) error
	Remove(ctx context.Context, org, activity string, s remind.Slot) error
	RemoveActivity(ctx context.Context, org, activity string) error
	RemoveUser(ctx context.Context, org, user string) error
}

// Preferences are users' choices, in memory.
type Preferences interface {
	Get(org, user string) (*remindersv1.Preferences, bool)
	Enabled(org, user string) bool
	// Set applies a saved choice at once.
	Set(p *remindersv1.Preferences)
}

// PreferenceStore records a choice durably (and for every replica).
type PreferenceStore interface {
	Save(ctx context.Context, p *remindersv1.Preferences) error
}

// Access says which teams an org may reach.
type Access interface {
	TeamActive(org, team string) bool
}

// Publisher publishes commands and events.
type Publisher interface {
	Publish(ctx context.Context, subject string, ev bus.Event) error
}

// Metrics observe what the service decides.
type Metrics interface {
	// Sent counts a posted reminder; late when marked late.
	Sent(late bool, lateness time.Duration)
	// Dropped counts a fired reminder that was not posted, by reason.
	Dropped(reason string)
}

// Config is the app's behaviour.
type Config struct {
	// CRMBaseURL builds Open in CRM for activities without a URL.
	CRMBaseURL string
	// Snooze is how long Snooze waits. Default 10 minutes.
	Snooze time.Duration
	// LateAfter is how long past its due time a reminder is late. Default 1
	// minute.
	LateAfter time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Buttons signs and checks the reminder's button values. Required.
	Buttons *remind.Buttons
}

// Service is the application.
type Service struct {
	cfg        Config
	activities Activities
	people     People
	timers     Timers
	prefs      Preferences
	prefStore  PreferenceStore
	access     Access
	pub        Publisher
	metrics    Metrics
	log        *slog.Logger
}

// Deps are the service's ports.
type Deps struct {
	Activities  Activities
	People      People
	Timers      Timers
	Preferences Preferences
	PrefStore   PreferenceStore
	Access      Access
	Publisher   Publisher
	Metrics     Metrics
}

// New returns the service.
func New(cfg Config, d Deps, log *slog.Logger) *Service {
	if cfg.Snooze <= 0 {
		cfg.Snooze = 10 * time.Minute
	}
	if cfg.LateAfter <= 0 {
		cfg.LateAfter = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{
		cfg: cfg, activities: d.Activities, people: d.People, timers: d.Timers, prefs: d.Preferences, prefStore: d.PrefStore,
		access: d.Access, pub: d.Publisher, metrics: d.Metrics, log: log,
	}
}

func (s *Service) now() time.Time { return s.cfg.Now() }
