package app

import (
	"context"
	"errors"

	"github.com/crmslack/crmslack/libs/bus"

	"github.com/crmslack/crmslack/services/signals/internal/burst"
	"github.com/crmslack/crmslack/services/signals/internal/matrix"
)

// ErrConflict is returned by stores for a write at a stale revision.
var ErrConflict = errors.New("changed meanwhile")

// SettingsStore keeps each org's settings durably, with revisions.
type SettingsStore interface {
	// Load returns the org's stored settings and their revision; the
	// defaults and 0 when nothing is stored.
	Load(ctx context.Context, org string) (matrix.Settings, uint64, error)
	// Save stores s if the stored revision still is rev (0: nothing
	// stored) and returns the new revision; ErrConflict otherwise.
	Save(ctx context.Context, s matrix.Settings, rev uint64) (uint64, error)
}

// SettingsView is every org's settings in memory, kept current by a watch
// of the store.
type SettingsView interface {
	Get(org string) matrix.Settings
	// Set records settings just saved, so this replica uses them for the
	// very next signal; an older version than the one held is ignored.
	Set(s matrix.Settings)
}

// Access is each org's Slack access (from the team registry's org_access
// bucket, in memory).
type Access interface {
	// Org reports whether the org's integration is on and its active teams.
	Org(org string) (enabled bool, teams []string, known bool)
}

// Directory finds a CRM user's Slack account in a team by email.
type Directory interface {
	// FindUser returns the Slack user id; "" when the team has nobody with
	// that email. An error means the directory could not be read.
	FindUser(ctx context.Context, org, team, email string) (string, error)
}

// State is the signal state: groups (which remember the signal events
// they hold) and reported owners.
type State interface {
	// Group returns the current group under key and its revision; nil and
	// 0 when there is none.
	Group(ctx context.Context, key string) (*burst.Group, uint64, error)
	// PutGroup stores g if key's revision still is rev (0: absent), or
	// fails with ErrConflict.
	PutGroup(ctx context.Context, key string, g burst.Group, rev uint64) (uint64, error)
	// DeleteGroup removes the group at revision rev (ErrConflict if it
	// changed).
	DeleteGroup(ctx context.Context, key string, rev uint64) error
	// Reported reports whether the unreachable owner was reported.
	Reported(ctx context.Context, org, owner string) (bool, error)
	// MarkReported records the report (create-only).
	MarkReported(ctx context.Context, org, owner string) error
}

// Publisher publishes events and commands on the bus.
type Publisher interface {
	Publish(ctx context.Context, subject string, ev bus.Event) error
}

// Metrics counts what happens to signals.
type Metrics interface {
	// Signal counts a signal by its result.
	Signal(result string)
	// Unreachable counts an owner reported unreachable (once per owner).
	Unreachable()
}
