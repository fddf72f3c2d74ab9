// Package registry is the team registry's domain: which Slack teams each CRM
// org authorised, in what state, and whether the org's integration is on. It
// is plain Go with no I/O: the app layer loads a [Team] or an [Org], applies
// one of the methods here, and stores the result together with the [Event]s
// the change produced.
//
// A team lives once per org ("<org>/<team>"): one Slack team may serve
// several orgs only because an admin of each authorised it. Every install
// bumps the row's Generation, so event ids derived from it are stable across
// retries of one change and distinct across changes.
package registry

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/crmslack/crmslack/libs/fault"

	"github.com/crmslack/crmslack/services/teams/internal/sealing"
)

// Sentinel kinds of domain error, each a libs/fault kind, so the gRPC edge
// maps it to the same status code as in every service.
var (
	ErrInvalidArgument    = fault.Invalid
	ErrNotFound           = fault.NotFound
	ErrPermissionDenied   = fault.Denied
	ErrFailedPrecondition = fault.Precondition
	// ErrConflict: the row changed between load and store; reload and retry.
	ErrConflict = fault.Conflict
)

// Error is a domain error: a kind (one of the sentinels) and a message
// meant for the caller.
type Error = fault.Error

func newErr(kind error, format string, args ...any) error { return fault.Errorf(kind, format, args...) }

// Status is a team's state within one org.
type Status int

// Team states.
const (
	StatusActive Status = iota + 1
	StatusRemoved
	// StatusBroken: the token stopped working; an admin must re-authorise.
	StatusBroken
)

func (s Status) String() string {
	switch s {
	case StatusActive:
		return "active"
	case StatusRemoved:
		return "removed"
	case StatusBroken:
		return "broken"
	}
	return "unknown"
}

// RemovalReason says why a team went away.
type RemovalReason int

// Removal reasons.
const (
	ReasonAdmin RemovalReason = iota + 1
	ReasonAppUninstalled
	ReasonTokensRevoked
	ReasonTokenInvalid
)

// User is a CRM user as the registry records them.
type User struct {
	ID    string
	Name  string
	Email string
}

// Caller is the CRM user making an admin call.
type Caller struct {
	User    User
	IsAdmin bool
}

// RequireAdmin refuses callers without admin rights, naming the action.
func RequireAdmin(c Caller, action string) error {
	if !c.IsAdmin {
		who := c.User.ID
		if who == "" {
			who = "an anonymous caller"
		}
		return newErr(ErrPermissionDenied, "%s requires a CRM administrator; %s is not one", action, who)
	}
	return nil
}

var (
	orgIDRe  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	teamIDRe = regexp.MustCompile(`^[TE][A-Z0-9]{2,31}$`)
	userIDRe = regexp.MustCompile(`^[UWB][A-Z0-9]{2,31}$`)
)

// ValidateOrgID checks an org id: 1-64 letters, digits, '_' or '-' (it
// becomes a NATS subject token and a key).
func ValidateOrgID(org string) error {
	if org == "" {
		return newErr(ErrInvalidArgument, "org_id is required")
	}
	if !orgIDRe.MatchString(org) {
		return newErr(ErrInvalidArgument, "org_id %q: use 1-64 letters, digits, '_' or '-'", org)
	}
	return nil
}

// ValidateTeamID checks a Slack team id (T…, or E… for an enterprise
// install).
func ValidateTeamID(team string) error {
	if team == "" {
		return newErr(ErrInvalidArgument, "team_id is required")
	}
	if !teamIDRe.MatchString(team) {
		return newErr(ErrInvalidArgument, "team_id %q is not a Slack team id", team)
	}
	return nil
}

// OrgTeamID is the row id of a team within an org.
func OrgTeamID(org, team string) string { return org + "/" + team }

// TeamInfo is what may be shown of a team: never a token.
type TeamInfo struct {
	TeamID               string
	Name                 string
	Domain               string
	EnterpriseID         string
	BotUserID            string
	AppID                string
	Scopes               []string
	InstallerSlackUserID string
}

// Team is a Slack team as one org has it.
type Team struct {
	OrgID string
	TeamInfo
	InstalledBy User
	InstalledAt time.Time
	UpdatedAt   time.Time
	Status      Status
	// Generation counts installs of this team into this org.
	Generation    int64
	RemovedReason RemovalReason
	RemovedBy     User
	RemovedAt     time.Time

	// BotToken and RefreshToken are sealed; RefreshToken is empty unless
	// Slack's token rotation is on.
	BotToken       sealing.Sealed
	RefreshToken   sealing.Sealed
	TokenIssuedAt  time.Time
	TokenExpiresAt time.Time // zero without rotation
	// TokenSerial counts token changes (installs and refreshes).
	TokenSerial int64

	// Version guards against lost updates: a store succeeds only if the row
	// still has the version it was loaded with.
	Version int64
	// Pending are events of committed changes not yet confirmed published.
	Pending []Event
}

// ID is the row id.
func (t *Team) ID() string { return OrgTeamID(t.OrgID, t.TeamID) }

// Rotating reports whether the team's token expires and can be refreshed.
func (t *Team) Rotating() bool { return !t.RefreshToken.IsZero() }

// Usable reports whether the org can post through the team.
func (t *Team) Usable() bool { return t.Status == StatusActive }

// Install is the verified outcome of an OAuth exchange, tokens sealed.
type Install struct {
	OrgID          string
	By             User
	Team           TeamInfo
	BotToken       sealing.Sealed
	RefreshToken   sealing.Sealed
	TokenExpiresAt time.Time
}

// Validate checks an install before anything is stored.
func (in *Install) Validate() error {
	if err := ValidateOrgID(in.OrgID); err != nil {
		return err
	}
	if err := ValidateTeamID(in.Team.TeamID); err != nil {
		return err
	}
	switch {
	case in.By.ID == "":
		return newErr(ErrInvalidArgument, "installed_by.id is required")
	case in.Team.Name == "":
		return newErr(ErrInvalidArgument, "team.name is required")
	case !userIDRe.MatchString(in.Team.BotUserID):
		return newErr(ErrInvalidArgument, "team.bot_user_id %q is not a Slack user id", in.Team.BotUserID)
	case in.BotToken.IsZero():
		return newErr(ErrInvalidArgument, "bot_token is required")
	case !in.RefreshToken.IsZero() && in.TokenExpiresAt.IsZero():
		return newErr(ErrInvalidArgument, "token_expires_at is required with a refresh_token")
	}
	return nil
}

// ApplyInstall authorises (or re-authorises) a team for an org. existing
// is the row if there is one (any status). It returns the new row and
// whether it was a re-authorisation of an active team, and records a
// TeamInstalled event.
func ApplyInstall(existing *Team, in Install, now time.Time) (Team, bool, error) {
	if err := in.Validate(); err != nil {
		return Team{}, false, err
	}
	var t Team
	if existing != nil {
		if existing.OrgID != in.OrgID || existing.TeamID != in.Team.TeamID {
			return Team{}, false, fmt.Errorf("install of %s applied to row %s", OrgTeamID(in.OrgID, in.Team.TeamID), existing.ID())
		}
		t = *existing
		t.Pending = slices.Clone(existing.Pending)
	} else {
		t = Team{OrgID: in.OrgID}
	}
	reinstall := existing != nil && existing.Status == StatusActive
	t.TeamInfo = in.Team
	t.TeamInfo.Scopes = slices.Clone(in.Team.Scopes)
	t.InstalledBy = in.By
	t.InstalledAt = now
	t.UpdatedAt = now
	t.Status = StatusActive
	t.Generation++
	t.RemovedReason, t.RemovedBy, t.RemovedAt = 0, User{}, time.Time{}
	t.BotToken, t.RefreshToken = in.BotToken, in.RefreshToken
	t.TokenIssuedAt, t.TokenExpiresAt = now, in.TokenExpiresAt
	t.TokenSerial++
	info := t.TeamInfo
	info.Scopes = slices.Clone(info.Scopes)
	t.Pending = append(t.Pending, Event{
		ID:        "team-installed:" + t.ID() + ":" + strconv.FormatInt(t.Generation, 10),
		Kind:      EventTeamInstalled,
		OrgID:     t.OrgID,
		TeamID:    t.TeamID,
		Team:      &info,
		Reinstall: reinstall,
		By:        in.By,
		At:        now,
	})
	return t, reinstall, nil
}

// Remove takes the team away from the org. It reports whether anything
// changed: removing a removed team is a no-op, so a retried removal, or an
// app_uninstalled following tokens_revoked, publishes one TeamRemoved.
// A broken team becomes removed without a second event (its TeamRemoved
// went out when it broke).
func (t *Team) Remove(reason RemovalReason, by User, now time.Time) bool {
	switch t.Status {
	case StatusRemoved:
		return false
	case StatusActive:
		t.RemovedReason, t.RemovedBy, t.RemovedAt = reason, by, now
		t.Pending = append(t.Pending, t.removedEvent(reason, by, now))
	}
	t.Status = StatusRemoved
	t.UpdatedAt = now
	// The tokens are of no use any more: forget them.
	t.BotToken, t.RefreshToken = sealing.Sealed{}, sealing.Sealed{}
	t.TokenExpiresAt = time.Time{}
	return true
}

// MarkBroken records that the team's token no longer works. Nobody can
// post through it until an admin re-authorises it, so it leaves the org's
// usable teams with a TeamRemoved (reason token invalid).
func (t *Team) MarkBroken(now time.Time) bool {
	if t.Status != StatusActive {
		return false
	}
	t.Status = StatusBroken
	t.RemovedReason, t.RemovedBy, t.RemovedAt = ReasonTokenInvalid, User{}, now
	t.UpdatedAt = now
	t.Pending = append(t.Pending, t.removedEvent(ReasonTokenInvalid, User{}, now))
	return true
}

func (t *Team) removedEvent(reason RemovalReason, by User, now time.Time) Event {
	return Event{
		ID:     "team-removed:" + t.ID() + ":" + strconv.FormatInt(t.Generation, 10),
		Kind:   EventTeamRemoved,
		OrgID:  t.OrgID,
		TeamID: t.TeamID,
		Reason: reason,
		By:     by,
		At:     now,
	}
}

// StaleSlackEvent reports whether a Slack event that happened at eventTime
// predates the team's current install, e.g. an app_uninstalled redelivered
// after the team was installed again. Slack's event_time has a resolution
// of one second.
func (t *Team) StaleSlackEvent(eventTime time.Time) bool {
	return !eventTime.IsZero() && eventTime.Before(t.InstalledAt.Truncate(time.Second))
}

// ApplyRefresh stores a refreshed token pair, if the team is still the one
// that was refreshed (same install generation and token serial).
func (t *Team) ApplyRefresh(generation, serial int64, bot, refresh sealing.Sealed, expires, now time.Time) error {
	if t.Status != StatusActive || t.Generation != generation || t.TokenSerial != serial {
		return newErr(ErrConflict, "team %s changed while its token was refreshed", t.ID())
	}
	t.BotToken, t.RefreshToken = bot, refresh
	t.TokenIssuedAt, t.TokenExpiresAt = now, expires
	t.TokenSerial++
	t.UpdatedAt = now
	return nil
}

// RefreshDue reports whether a rotating token should be refreshed now:
// when less than a quarter of its lifetime is left, or less than an hour
// (but never more than half of the lifetime, so a short-lived token is not
// refreshed continuously).
func (t *Team) RefreshDue(now time.Time) bool {
	if !t.Rotating() || t.Status != StatusActive || t.TokenExpiresAt.IsZero() {
		return false
	}
	lifetime := t.TokenExpiresAt.Sub(t.TokenIssuedAt)
	threshold := max(lifetime/4, min(time.Hour, lifetime/2))
	return t.TokenExpiresAt.Sub(now) < threshold
}

// TokenExpired reports whether the bot token has expired, or will within
// skew.
func (t *Team) TokenExpired(now time.Time, skew time.Duration) bool {
	return !t.TokenExpiresAt.IsZero() && !now.Add(skew).Before(t.TokenExpiresAt)
}

// Org is a CRM org's integration switch.
type Org struct {
	ID      string
	Enabled bool
	// Generation counts switches, for stable event ids.
	Generation int64
	CreatedAt  time.Time
	ChangedAt  time.Time
	ChangedBy  User
	Version    int64
	Pending    []Event
}

// NewOrg is an org seen for the first time, at its first install: on.
func NewOrg(id string, now time.Time) Org {
	return Org{ID: id, Enabled: true, CreatedAt: now, ChangedAt: now}
}

// Disable turns the integration off; a no-op if it is off.
func (o *Org) Disable(by User, now time.Time) bool { return o.set(false, by, now) }

// Enable turns the integration on; a no-op if it is on.
func (o *Org) Enable(by User, now time.Time) bool { return o.set(true, by, now) }

func (o *Org) set(enabled bool, by User, now time.Time) bool {
	if o.Enabled == enabled {
		return false
	}
	o.Enabled = enabled
	o.Generation++
	o.ChangedAt, o.ChangedBy = now, by
	kind, name := EventIntegrationDisabled, "integration-disabled:"
	if enabled {
		kind, name = EventIntegrationEnabled, "integration-enabled:"
	}
	o.Pending = append(o.Pending, Event{
		ID:    name + o.ID + ":" + strconv.FormatInt(o.Generation, 10),
		Kind:  kind,
		OrgID: o.ID,
		By:    by,
		At:    now,
	})
	return true
}

// EventKind names what an Event announces.
type EventKind int

// Event kinds.
const (
	EventTeamInstalled EventKind = iota + 1
	EventTeamRemoved
	EventIntegrationDisabled
	EventIntegrationEnabled
)

// Event is a change to announce. ID is stable for one change, so a retried
// publish is dropped by the stream's duplicate window.
type Event struct {
	ID        string
	Kind      EventKind
	OrgID     string
	TeamID    string
	Team      *TeamInfo // TeamInstalled
	Reinstall bool      // TeamInstalled
	Reason    RemovalReason
	By        User
	At        time.Time
}

// Access is what the egress needs for one org: whether it is on and which
// teams it can post through.
type Access struct {
	OrgID   string
	Enabled bool
	Teams   []TeamAccess
	At      time.Time
}

// TeamAccess is one usable team, or one whose token needs re-authorizing
// (NeedsReauth), listed so Slack-facing services can tell its users to
// reconnect rather than that it is not connected.
type TeamAccess struct {
	TeamID      string
	BotUserID   string
	NeedsReauth bool
}

// AccessOf computes an org's access from its switch and its rows. Active
// teams and those needing re-authorization appear, sorted by team id. org may be nil for an org never
// switched (then it is on).
func AccessOf(orgID string, org *Org, teams []Team, now time.Time) Access {
	a := Access{OrgID: orgID, Enabled: org == nil || org.Enabled, At: now}
	for i := range teams {
		if teams[i].OrgID == orgID && (teams[i].Usable() || teams[i].Status == StatusBroken) {
			a.Teams = append(a.Teams, TeamAccess{TeamID: teams[i].TeamID, BotUserID: teams[i].BotUserID, NeedsReauth: !teams[i].Usable()})
		}
	}
	slices.SortFunc(a.Teams, func(x, y TeamAccess) int {
		switch {
		case x.TeamID < y.TeamID:
			return -1
		case x.TeamID > y.TeamID:
			return 1
		}
		return 0
	})
	return a
}

// NotFoundTeam is the error for a team an org does not have.
func NotFoundTeam(org, team string) error {
	return newErr(ErrNotFound, "team %s is not registered for org %s", team, org)
}

// NotFoundOrg is the error for an org the registry has never seen.
func NotFoundOrg(org string) error {
	return newErr(ErrNotFound, "org %s has no Slack integration: no team was ever authorised for it", org)
}

// Unusable explains why a team cannot be used to post, or returns nil.
func Unusable(org *Org, t *Team) error {
	if org != nil && !org.Enabled {
		return newErr(ErrFailedPrecondition, "the Slack integration of org %s is disabled", org.ID)
	}
	switch t.Status {
	case StatusRemoved:
		return newErr(ErrFailedPrecondition, "team %s was removed from org %s", t.TeamID, t.OrgID)
	case StatusBroken:
		return newErr(ErrFailedPrecondition, "team %s of org %s must be re-authorised: its token no longer works", t.TeamID, t.OrgID)
	}
	return nil
}

// Invalid is an ErrInvalidArgument with a message.
func Invalid(format string, args ...any) error { return newErr(ErrInvalidArgument, format, args...) }
