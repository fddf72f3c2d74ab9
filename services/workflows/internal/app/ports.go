package app

import (
	"context"
	"time"

	"github.com/crmslack/crmslack/libs/bus"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"

	"github.com/crmslack/crmslack/services/workflows/internal/action"
	"github.com/crmslack/crmslack/services/workflows/internal/valuefmt"
)

// Access is the org_access bucket as held in memory (access.View).
type Access interface {
	// Enabled reports whether the org's integration is on; false for an
	// org the registry never wrote.
	Enabled(org string) bool
	// TeamActive reports whether team is one of the org's active teams.
	TeamActive(org, team string) bool
	Synced() bool
}

// Directory is a team's channels (that the app can post to) and people.
type Directory struct {
	Channels map[string]bool
	Users    map[string]bool
}

// Teams is what workflows asks the team registry (remote.Teams). Errors
// are *action.Error.
type Teams interface {
	// MemberTeams lists the ids of the org's active teams that have a
	// person with this email.
	MemberTeams(ctx context.Context, org, email string) ([]string, error)
	Directory(ctx context.Context, org, team string) (Directory, error)
}

// Model is the read model of actions, schemas and formats, in memory and
// kept current from the store (readmodel.Model).
type Model interface {
	Rule(org, rule string) []*action.Action
	Action(org, id string) (*action.Action, bool)
	Org(org string) []*action.Action
	Schema(org, module string) (*crmv1.ModuleSchema, bool)
	Format(org string) valuefmt.Format
	Synced() bool
	// Put and Delete apply this replica's own writes at once, so a caller
	// reads what it wrote.
	Put(a *action.Action)
	Delete(org, id string, rev uint64)
	PutSchema(org string, s *crmv1.ModuleSchema)
	PutFormat(org string, f valuefmt.Format)
}

// Store keeps actions, schemas and formats durably (kvstore.Store). Writes
// return the new revision; a failed compare-and-set is action.ErrConflict.
type Store interface {
	CreateAction(ctx context.Context, a *action.Action) (uint64, error)
	UpdateAction(ctx context.Context, a *action.Action, expected uint64) (uint64, error)
	DeleteAction(ctx context.Context, org, id string) error
	PutSchema(ctx context.Context, org string, s *crmv1.ModuleSchema) error
	PutFormat(ctx context.Context, org string, f valuefmt.Format) error
}

// Publisher publishes and waits for the stream's acks (bus.Bus).
type Publisher interface {
	PublishBatch(ctx context.Context, items []bus.Published) error
}

// History keeps history entries with inserts only (history.Repo).
type History interface {
	// Record inserts entries; ones already there are skipped.
	Record(ctx context.Context, entries ...action.Entry) error
	List(ctx context.Context, q HistoryQuery) ([]action.Entry, error)
}

// HistoryQuery selects one action's or one rule's entries.
type HistoryQuery struct {
	Org, ActionID, RuleID string
	Limit                 int
	Before                time.Time
}
