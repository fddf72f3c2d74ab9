// Package mongorepo stores the team registry in MongoDB: one document per
// team per org in "org_teams" (_id "<org>/<team>") and one per org in "orgs"
// (the integration switch). Both collections hold thousands of documents at
// most, so whole-row writes guarded by a version number are cheap even on
// the embedded FerretDB, where every read scans the collection; none of this
// is on a per-message hot path. A write of a version is a compare-and-set
// through a create-only claim of that version (versions.go).
//
// Tokens are stored only as sealed values (key id + AES-GCM ciphertext).
package mongorepo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/crmslack/crmslack/libs/store"
	"github.com/crmslack/crmslack/services/teams/internal/registry"
	"github.com/crmslack/crmslack/services/teams/internal/sealing"
)

// Collection names.
const (
	CollTeams = "org_teams"
	CollOrgs  = "orgs"
)

// Indexes are the indexes the repository relies on, created at start-up.
// They speed up look-ups by team and org on MongoDB; uniqueness comes from
// _id.
func Indexes() []store.IndexSpec {
	return []store.IndexSpec{
		{Collection: CollTeams, Model: mongo.IndexModel{Keys: bson.D{{Key: "org_id", Value: 1}}, Options: options.Index().SetName("org_id")}},
		{Collection: CollTeams, Model: mongo.IndexModel{Keys: bson.D{{Key: "team_id", Value: 1}}, Options: options.Index().SetName("team_id")}},
	}
}

// Repo is the registry's storage.
type Repo struct {
	teams *mongo.Collection
	orgs  *mongo.Collection
}

// New returns a repository over db.
func New(db *mongo.Database) *Repo {
	return &Repo{teams: db.Collection(CollTeams), orgs: db.Collection(CollOrgs)}
}

type userDoc struct {
	ID    string `bson:"id,omitempty"`
	Name  string `bson:"name,omitempty"`
	Email string `bson:"email,omitempty"`
}

type sealedDoc struct {
	KeyID string `bson:"kid"`
	Data  []byte `bson:"ct"`
}

type teamInfoDoc struct {
	TeamID               string   `bson:"team_id"`
	Name                 string   `bson:"name"`
	Domain               string   `bson:"domain,omitempty"`
	EnterpriseID         string   `bson:"enterprise_id,omitempty"`
	BotUserID            string   `bson:"bot_user_id"`
	AppID                string   `bson:"app_id,omitempty"`
	Scopes               []string `bson:"scopes"`
	InstallerSlackUserID string   `bson:"installer_slack_user_id,omitempty"`
}

type eventDoc struct {
	ID        string       `bson:"id"`
	Kind      int          `bson:"kind"`
	OrgID     string       `bson:"org_id"`
	TeamID    string       `bson:"team_id,omitempty"`
	Team      *teamInfoDoc `bson:"team,omitempty"`
	Reinstall bool         `bson:"reinstall,omitempty"`
	Reason    int          `bson:"reason,omitempty"`
	By        userDoc      `bson:"by"`
	At        time.Time    `bson:"at"`
}

type teamDoc struct {
	ID             string      `bson:"_id"`
	OrgID          string      `bson:"org_id"`
	Info           teamInfoDoc `bson:",inline"`
	InstalledBy    userDoc     `bson:"installed_by"`
	InstalledAt    time.Time   `bson:"installed_at"`
	UpdatedAt      time.Time   `bson:"updated_at"`
	Status         string      `bson:"status"`
	Generation     int64       `bson:"generation"`
	RemovedReason  int         `bson:"removed_reason,omitempty"`
	RemovedBy      userDoc     `bson:"removed_by,omitempty"`
	RemovedAt      *time.Time  `bson:"removed_at,omitempty"`
	BotToken       *sealedDoc  `bson:"bot_token,omitempty"`
	RefreshToken   *sealedDoc  `bson:"refresh_token,omitempty"`
	Rotating       bool        `bson:"rotating"`
	TokenIssuedAt  time.Time   `bson:"token_issued_at"`
	TokenExpiresAt *time.Time  `bson:"token_expires_at,omitempty"`
	TokenSerial    int64       `bson:"token_serial"`
	Version        int64       `bson:"version"`
	Dirty          bool        `bson:"dirty"`
	Pending        []eventDoc  `bson:"pending"`
}

type orgDoc struct {
	ID         string     `bson:"_id"`
	Enabled    bool       `bson:"enabled"`
	Generation int64      `bson:"generation"`
	CreatedAt  time.Time  `bson:"created_at"`
	ChangedAt  time.Time  `bson:"changed_at"`
	ChangedBy  userDoc    `bson:"changed_by"`
	Version    int64      `bson:"version"`
	Dirty      bool       `bson:"dirty"`
	Pending    []eventDoc `bson:"pending"`
}

var statusNames = map[registry.Status]string{
	registry.StatusActive: "active", registry.StatusRemoved: "removed", registry.StatusBroken: "broken",
}

func statusOf(s string) registry.Status {
	for k, v := range statusNames {
		if v == s {
			return k
		}
	}
	return 0
}

func toUser(u userDoc) registry.User   { return registry.User(u) }
func fromUser(u registry.User) userDoc { return userDoc(u) }

// optTime stores a zero time as an absent field.
func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func fromOpt(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func sealedTo(s sealing.Sealed) *sealedDoc {
	if s.IsZero() {
		return nil
	}
	return &sealedDoc{KeyID: s.KeyID, Data: s.Data}
}

func sealedFrom(d *sealedDoc) sealing.Sealed {
	if d == nil {
		return sealing.Sealed{}
	}
	return sealing.Sealed{KeyID: d.KeyID, Data: d.Data}
}

func infoTo(i registry.TeamInfo) teamInfoDoc {
	scopes := i.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return teamInfoDoc{TeamID: i.TeamID, Name: i.Name, Domain: i.Domain, EnterpriseID: i.EnterpriseID,
		BotUserID: i.BotUserID, AppID: i.AppID, Scopes: scopes, InstallerSlackUserID: i.InstallerSlackUserID}
}

func infoFrom(d teamInfoDoc) registry.TeamInfo {
	return registry.TeamInfo{TeamID: d.TeamID, Name: d.Name, Domain: d.Domain, EnterpriseID: d.EnterpriseID,
		BotUserID: d.BotUserID, AppID: d.AppID, Scopes: d.Scopes, InstallerSlackUserID: d.InstallerSlackUserID}
}

func eventsTo(evs []registry.Event) []eventDoc {
	out := make([]eventDoc, 0, len(evs))
	for _, e := range evs {
		d := eventDoc{ID: e.ID, Kind: int(e.Kind), OrgID: e.OrgID, TeamID: e.TeamID, Reinstall: e.Reinstall,
			Reason: int(e.Reason), By: fromUser(e.By), At: e.At}
		if e.Team != nil {
			info := infoTo(*e.Team)
			d.Team = &info
		}
		out = append(out, d)
	}
	return out
}

func eventsFrom(ds []eventDoc) []registry.Event {
	var out []registry.Event
	for _, d := range ds {
		e := registry.Event{ID: d.ID, Kind: registry.EventKind(d.Kind), OrgID: d.OrgID, TeamID: d.TeamID,
			Reinstall: d.Reinstall, Reason: registry.RemovalReason(d.Reason), By: toUser(d.By), At: d.At}
		if d.Team != nil {
			info := infoFrom(*d.Team)
			e.Team = &info
		}
		out = append(out, e)
	}
	return out
}

func teamTo(t *registry.Team) teamDoc {
	return teamDoc{
		ID: t.ID(), OrgID: t.OrgID, Info: infoTo(t.TeamInfo),
		InstalledBy: fromUser(t.InstalledBy), InstalledAt: t.InstalledAt, UpdatedAt: t.UpdatedAt,
		Status: statusNames[t.Status], Generation: t.Generation,
		RemovedReason: int(t.RemovedReason), RemovedBy: fromUser(t.RemovedBy), RemovedAt: optTime(t.RemovedAt),
		BotToken: sealedTo(t.BotToken), RefreshToken: sealedTo(t.RefreshToken), Rotating: t.Rotating(),
		TokenIssuedAt: t.TokenIssuedAt, TokenExpiresAt: optTime(t.TokenExpiresAt), TokenSerial: t.TokenSerial,
		Version: t.Version, Dirty: len(t.Pending) > 0, Pending: eventsTo(t.Pending),
	}
}

func teamFrom(d *teamDoc) registry.Team {
	return registry.Team{
		OrgID: d.OrgID, TeamInfo: infoFrom(d.Info),
		InstalledBy: toUser(d.InstalledBy), InstalledAt: d.InstalledAt, UpdatedAt: d.UpdatedAt,
		Status: statusOf(d.Status), Generation: d.Generation,
		RemovedReason: registry.RemovalReason(d.RemovedReason), RemovedBy: toUser(d.RemovedBy), RemovedAt: fromOpt(d.RemovedAt),
		BotToken: sealedFrom(d.BotToken), RefreshToken: sealedFrom(d.RefreshToken),
		TokenIssuedAt: d.TokenIssuedAt, TokenExpiresAt: fromOpt(d.TokenExpiresAt), TokenSerial: d.TokenSerial,
		Version: d.Version, Pending: eventsFrom(d.Pending),
	}
}

func orgTo(o *registry.Org) orgDoc {
	return orgDoc{ID: o.ID, Enabled: o.Enabled, Generation: o.Generation, CreatedAt: o.CreatedAt,
		ChangedAt: o.ChangedAt, ChangedBy: fromUser(o.ChangedBy), Version: o.Version,
		Dirty: len(o.Pending) > 0, Pending: eventsTo(o.Pending)}
}

func orgFrom(d *orgDoc) registry.Org {
	return registry.Org{ID: d.ID, Enabled: d.Enabled, Generation: d.Generation, CreatedAt: d.CreatedAt,
		ChangedAt: d.ChangedAt, ChangedBy: toUser(d.ChangedBy), Version: d.Version, Pending: eventsFrom(d.Pending)}
}

// Team loads one row; found is false when there is none.
func (r *Repo) Team(ctx context.Context, org, team string) (registry.Team, bool, error) {
	var d teamDoc
	err := r.teams.FindOne(ctx, bson.D{{Key: "_id", Value: registry.OrgTeamID(org, team)}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return registry.Team{}, false, nil
	}
	if err != nil {
		return registry.Team{}, false, fmt.Errorf("loading team %s/%s: %w", org, team, err)
	}
	if err := r.latest(ctx, CollTeams, d.ID, d.Version, func(raw bson.Raw) error { d = teamDoc{}; return bson.Unmarshal(raw, &d) }); err != nil {
		return registry.Team{}, false, fmt.Errorf("loading team %s/%s: %w", org, team, err)
	}
	return teamFrom(&d), true, nil
}

func (r *Repo) findTeams(ctx context.Context, filter bson.D) ([]registry.Team, error) {
	if err := r.catchUp(ctx, r.teams); err != nil {
		return nil, err
	}
	cur, err := r.teams.Find(ctx, filter, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fmt.Errorf("finding teams: %w", err)
	}
	var docs []teamDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("reading teams: %w", err)
	}
	out := make([]registry.Team, 0, len(docs))
	for i := range docs {
		out = append(out, teamFrom(&docs[i]))
	}
	return out, nil
}

// TeamsOfOrg lists an org's rows, every status, by team id.
func (r *Repo) TeamsOfOrg(ctx context.Context, org string) ([]registry.Team, error) {
	return r.findTeams(ctx, bson.D{{Key: "org_id", Value: org}})
}

// RowsOfTeam lists the rows of one Slack team, one per org.
func (r *Repo) RowsOfTeam(ctx context.Context, team string) ([]registry.Team, error) {
	return r.findTeams(ctx, bson.D{{Key: "team_id", Value: team}})
}

// RotatingTeams lists active rows whose token rotates.
func (r *Repo) RotatingTeams(ctx context.Context) ([]registry.Team, error) {
	return r.findTeams(ctx, bson.D{{Key: "rotating", Value: true}, {Key: "status", Value: statusNames[registry.StatusActive]}})
}

// DirtyTeams lists rows with events not yet confirmed published.
func (r *Repo) DirtyTeams(ctx context.Context) ([]registry.Team, error) {
	return r.findTeams(ctx, bson.D{{Key: "dirty", Value: true}})
}

// OrgIDs lists every org known by a switch or a team row.
func (r *Repo) OrgIDs(ctx context.Context) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, c := range []struct {
		coll  *mongo.Collection
		field string
	}{{r.orgs, "_id"}, {r.teams, "org_id"}} {
		cur, err := c.coll.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: c.field, Value: 1}}))
		if err != nil {
			return nil, fmt.Errorf("listing orgs: %w", err)
		}
		var docs []bson.M
		if err := cur.All(ctx, &docs); err != nil {
			return nil, fmt.Errorf("listing orgs: %w", err)
		}
		for _, d := range docs {
			if id, ok := d[c.field].(string); ok && !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	return out, nil
}

// SaveTeam stores t: an insert when t.Version is 0, else a write that
// succeeds only if no other writer took the version after t.Version (a
// claim, see save). On success t.Version
// is the new version; a lost race is registry.ErrConflict.
func (r *Repo) SaveTeam(ctx context.Context, t *registry.Team) error {
	d := teamTo(t)
	d.Version = t.Version + 1
	if err := r.save(ctx, r.teams, d.ID, t.Version, d); err != nil {
		return fmt.Errorf("saving team %s: %w", t.ID(), err)
	}
	t.Version = d.Version
	return nil
}

// Org loads an org's switch; found is false when it was never stored.
func (r *Repo) Org(ctx context.Context, org string) (registry.Org, bool, error) {
	var d orgDoc
	err := r.orgs.FindOne(ctx, bson.D{{Key: "_id", Value: org}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return registry.Org{}, false, nil
	}
	if err != nil {
		return registry.Org{}, false, fmt.Errorf("loading org %s: %w", org, err)
	}
	if err := r.latest(ctx, CollOrgs, d.ID, d.Version, func(raw bson.Raw) error { d = orgDoc{}; return bson.Unmarshal(raw, &d) }); err != nil {
		return registry.Org{}, false, fmt.Errorf("loading org %s: %w", org, err)
	}
	return orgFrom(&d), true, nil
}

// DirtyOrgs lists orgs with events not yet confirmed published.
func (r *Repo) DirtyOrgs(ctx context.Context) ([]registry.Org, error) {
	if err := r.catchUp(ctx, r.orgs); err != nil {
		return nil, err
	}
	cur, err := r.orgs.Find(ctx, bson.D{{Key: "dirty", Value: true}})
	if err != nil {
		return nil, fmt.Errorf("finding orgs: %w", err)
	}
	var docs []orgDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, fmt.Errorf("reading orgs: %w", err)
	}
	out := make([]registry.Org, 0, len(docs))
	for i := range docs {
		out = append(out, orgFrom(&docs[i]))
	}
	return out, nil
}

// SaveOrg stores o like SaveTeam.
func (r *Repo) SaveOrg(ctx context.Context, o *registry.Org) error {
	d := orgTo(o)
	d.Version = o.Version + 1
	if err := r.save(ctx, r.orgs, d.ID, o.Version, d); err != nil {
		return fmt.Errorf("saving org %s: %w", o.ID, err)
	}
	o.Version = d.Version
	return nil
}
