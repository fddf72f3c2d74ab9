package app

import (
	"context"
	"time"

	"github.com/crmslack/crmslack/libs/bus"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"

	"github.com/crmslack/crmslack/services/sharing/internal/share"
)

// Access is the org_access bucket as this replica holds it in memory
// (access.View implements it).
type Access interface {
	// Org returns the org's access, and false for an org the team registry
	// has never written.
	Org(org string) (share.Access, bool)
	// Synced reports whether the bucket's initial values have been read.
	Synced() bool
}

// SlackUser is a Slack user's profile as the team's bot sees it.
type SlackUser struct {
	Email, RealName string
	Deleted         bool
}

// Teams is what sharing asks the team registry (teamsclient implements
// it). Errors are *share.Error: NotFound, Precondition, Invalid, or
// Unavailable when the registry could not answer.
type Teams interface {
	// MemberTeams lists the org's usable teams whose Slack workspace has a
	// person with this email.
	MemberTeams(ctx context.Context, org, email string) ([]share.Team, error)
	// Directory lists a team's channels and people.
	Directory(ctx context.Context, org, team string) (share.Directory, error)
	// SlackUser returns a Slack user of a team.
	SlackUser(ctx context.Context, team, user string) (SlackUser, error)
}

// Records finds a record in the query service's projection (queryclient
// implements it). A missing record is a share.ErrNotFound.
type Records interface {
	Record(ctx context.Context, org, module, id string) (*crmv1.Record, *crmv1.ModuleSchema, error)
	// IsCrmUser says whether email is an active CRM user of org.
	IsCrmUser(ctx context.Context, org, email string) (bool, error)
}

// Publisher publishes commands and waits for the stream's acks (bus.Bus
// implements it). A batch that failed may be published again whole: the
// stream drops what already landed.
type Publisher interface {
	PublishBatch(ctx context.Context, items []bus.Published) error
}

// Repo records shares and their outcomes with inserts only (mongorepo
// implements it).
type Repo interface {
	// Create inserts a share; created is false when its id was taken.
	Create(ctx context.Context, s share.Share) (created bool, err error)
	// Get reads one share.
	Get(ctx context.Context, id string) (share.Share, bool, error)
	// AddOutcomes inserts outcomes; ones already recorded are skipped.
	AddOutcomes(ctx context.Context, outs ...share.Outcome) error
	// List returns an org's shares, newest first, after the cursor.
	List(ctx context.Context, q ListQuery) ([]share.Share, error)
	// Outcomes returns the outcomes of the given shares.
	Outcomes(ctx context.Context, shareIDs []string) ([]share.Outcome, error)
}

// ListQuery selects shares for ListShares.
type ListQuery struct {
	Org string
	// From and To bound SharedAt (From inclusive, To exclusive); zero
	// means unbounded.
	From, To time.Time
	SharerID string
	Limit    int
	// AfterAt and AfterID continue a listing after the share with this
	// (SharedAt, ID); zero AfterAt starts from the newest.
	AfterAt time.Time
	AfterID string
}
