// Package app is the team registry's application layer: each exported
// method of [Service] is one command or query, loading rows through [Repo],
// applying the domain (package registry), storing the result with the events
// it produced, then publishing those events and the org's access.
//
// Changes and their events are stored together (the row's pending events),
// so an event whose publish failed is published later by [Service.Sweep],
// with the same id: at least once, and once within the stream's duplicate
// window.
package app

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/crmslack/crmslack/libs/installticket"
	"github.com/crmslack/crmslack/services/teams/internal/registry"
	"github.com/crmslack/crmslack/services/teams/internal/sealing"
)

// ErrUnavailable marks a failure of a dependency (Slack, the bus) that a
// retry may fix.
var ErrUnavailable = errors.New("unavailable")

func unavailable(format string, args ...any) error {
	return &registry.Error{Kind: ErrUnavailable, Msg: fmt.Sprintf(format, args...)}
}

// Config tunes the service.
type Config struct {
	// InstallURL is the gateway's /slack/install URL BeginInstall points to.
	InstallURL string
	// TicketTTL is how long an install ticket is valid.
	TicketTTL time.Duration
	// MembershipTTL is how long a positive users.lookupByEmail answer is
	// cached; negative answers are kept a fifth of that.
	MembershipTTL time.Duration
	// ExpirySkew: a token expiring within it counts as expired.
	ExpirySkew time.Duration
	// DirectoryTTL is how long a team's channels and users are cached for
	// ListDirectory.
	DirectoryTTL time.Duration
}

// Service is the registry's use cases. Safe for concurrent use.
type Service struct {
	cfg     Config
	repo    Repo
	pub     Publisher
	access  AccessStore
	slack   Slack
	keys    *sealing.Keyring
	tickets *installticket.Signer
	log     *slog.Logger
	now     func() time.Time

	locks     [64]sync.Mutex
	refreshes singleflight.Group
	members   *memberCache
	users     *userCache
	dirs      *directoryCache
	dirLoads  singleflight.Group

	retryMu     sync.Mutex
	retryAccess map[string]bool // orgs whose access sync failed

	metrics *Metrics // nil until RegisterMetrics: then nothing is counted
}

// New builds the service. now may be nil (time.Now).
func New(cfg Config, repo Repo, pub Publisher, access AccessStore, slack Slack,
	keys *sealing.Keyring, tickets *installticket.Signer, log *slog.Logger, now func() time.Time,
) *Service {
	if now == nil {
		now = time.Now
	}
	if cfg.TicketTTL == 0 {
		cfg.TicketTTL = installticket.DefaultTTL
	}
	if cfg.MembershipTTL == 0 {
		cfg.MembershipTTL = 10 * time.Minute
	}
	if cfg.ExpirySkew == 0 {
		cfg.ExpirySkew = time.Minute
	}
	if cfg.DirectoryTTL == 0 {
		cfg.DirectoryTTL = 5 * time.Minute
	}
	return &Service{
		cfg: cfg, repo: repo, pub: pub, access: access, slack: slack, keys: keys, tickets: tickets,
		log: log, now: now, members: newMemberCache(10_000), users: newUserCache(10_000), dirs: newDirectoryCache(), retryAccess: map[string]bool{},
	}
}

// lockOrg serialises this replica's changes to one org, so they rarely race
// on a row's version; replicas are kept apart by the versions themselves.
func (s *Service) lockOrg(org string) func() {
	h := fnv.New32a()
	h.Write([]byte(org))
	m := &s.locks[h.Sum32()%uint32(len(s.locks))]
	m.Lock()
	return m.Unlock
}

// Token fields, part of the sealed value's associated data.
const (
	fieldBot     = "bot"
	fieldRefresh = "refresh"
)

func tokenAAD(org, team, field string) []byte {
	return sealing.AAD("crmslack/teams/token/v1", org, team, field)
}

func (s *Service) seal(org, team, field, token string) (sealing.Sealed, error) {
	if token == "" {
		return sealing.Sealed{}, nil
	}
	v, err := s.keys.Seal([]byte(token), tokenAAD(org, team, field))
	if err != nil {
		return sealing.Sealed{}, fmt.Errorf("sealing the %s token of %s/%s: %w", field, org, team, err)
	}
	return v, nil
}

func (s *Service) open(t *registry.Team, field string) (string, error) {
	v := t.BotToken
	if field == fieldRefresh {
		v = t.RefreshToken
	}
	pt, err := s.keys.Open(v, tokenAAD(t.OrgID, t.TeamID, field))
	if err != nil {
		return "", fmt.Errorf("opening the %s token of %s: %w", field, t.ID(), err)
	}
	return string(pt), nil
}

// mutateTeam applies change to the stored row (nil when there is none) and
// stores the result, retrying on a concurrent update. change returns nil
// for "nothing to do". The result is the stored row (or the unchanged one).
func (s *Service) mutateTeam(ctx context.Context, org, team string, change func(cur *registry.Team) (*registry.Team, error)) (registry.Team, bool, error) {
	for attempt := 0; ; attempt++ {
		cur, found, err := s.repo.Team(ctx, org, team)
		if err != nil {
			return registry.Team{}, false, err
		}
		var curp *registry.Team
		if found {
			curp = &cur
		}
		next, err := change(curp)
		if err != nil {
			return registry.Team{}, false, err
		}
		if next == nil {
			return cur, found, nil
		}
		err = s.repo.SaveTeam(ctx, next)
		if errors.Is(err, registry.ErrConflict) && attempt < 10 {
			continue
		}
		if err != nil {
			return registry.Team{}, false, err
		}
		return *next, true, nil
	}
}

func (s *Service) mutateOrg(ctx context.Context, org string, change func(cur *registry.Org) (*registry.Org, error)) (registry.Org, bool, error) {
	for attempt := 0; ; attempt++ {
		cur, found, err := s.repo.Org(ctx, org)
		if err != nil {
			return registry.Org{}, false, err
		}
		var curp *registry.Org
		if found {
			curp = &cur
		}
		next, err := change(curp)
		if err != nil {
			return registry.Org{}, false, err
		}
		if next == nil {
			return cur, found, nil
		}
		err = s.repo.SaveOrg(ctx, next)
		if errors.Is(err, registry.ErrConflict) && attempt < 10 {
			continue
		}
		if err != nil {
			return registry.Org{}, false, err
		}
		return *next, true, nil
	}
}

// publishPending publishes events in order and reports the ids that made
// it; it stops at the first failure so order is kept.
func (s *Service) publishPending(ctx context.Context, evs []registry.Event) ([]string, error) {
	var done []string
	for _, e := range evs {
		subject, msg, err := toProto(e)
		if err != nil {
			return done, err
		}
		if err := s.pub.Publish(ctx, subject, msg); err != nil {
			return done, fmt.Errorf("publishing %s: %w", e.ID, err)
		}
		done = append(done, e.ID)
	}
	return done, nil
}

// flushTeam publishes a row's pending events and forgets them. A failure
// leaves them pending for Sweep; it is logged and returned.
func (s *Service) flushTeam(ctx context.Context, t registry.Team) error {
	if len(t.Pending) == 0 {
		return nil
	}
	done, perr := s.publishPending(ctx, t.Pending)
	if len(done) > 0 {
		_, _, err := s.mutateTeam(ctx, t.OrgID, t.TeamID, func(cur *registry.Team) (*registry.Team, error) {
			if cur == nil {
				return nil, nil
			}
			n := len(cur.Pending)
			cur.Pending = slices.DeleteFunc(cur.Pending, func(e registry.Event) bool { return slices.Contains(done, e.ID) })
			if len(cur.Pending) == n {
				return nil, nil
			}
			return cur, nil
		})
		if err != nil {
			perr = errors.Join(perr, fmt.Errorf("clearing published events of %s: %w", t.ID(), err))
		}
	}
	if perr != nil {
		s.log.WarnContext(ctx, "team events left pending", "org", t.OrgID, "team", t.TeamID, "err", perr)
	}
	return perr
}

func (s *Service) flushOrg(ctx context.Context, o registry.Org) error {
	if len(o.Pending) == 0 {
		return nil
	}
	done, perr := s.publishPending(ctx, o.Pending)
	if len(done) > 0 {
		_, _, err := s.mutateOrg(ctx, o.ID, func(cur *registry.Org) (*registry.Org, error) {
			if cur == nil {
				return nil, nil
			}
			n := len(cur.Pending)
			cur.Pending = slices.DeleteFunc(cur.Pending, func(e registry.Event) bool { return slices.Contains(done, e.ID) })
			if len(cur.Pending) == n {
				return nil, nil
			}
			return cur, nil
		})
		if err != nil {
			perr = errors.Join(perr, fmt.Errorf("clearing published events of org %s: %w", o.ID, err))
		}
	}
	if perr != nil {
		s.log.WarnContext(ctx, "org events left pending", "org", o.ID, "err", perr)
	}
	return perr
}

// syncAccess writes the org's current access to the bucket. A failure is
// remembered and retried by Sweep.
func (s *Service) syncAccess(ctx context.Context, org string) error {
	err := s.access.Sync(ctx, org, func(ctx context.Context) (registry.Access, error) {
		o, found, err := s.repo.Org(ctx, org)
		if err != nil {
			return registry.Access{}, err
		}
		teams, err := s.repo.TeamsOfOrg(ctx, org)
		if err != nil {
			return registry.Access{}, err
		}
		var op *registry.Org
		if found {
			op = &o
		}
		return registry.AccessOf(org, op, teams, s.now()), nil
	})
	s.retryMu.Lock()
	if err != nil {
		s.retryAccess[org] = true
	} else {
		delete(s.retryAccess, org)
	}
	s.retryMu.Unlock()
	if err != nil {
		s.log.WarnContext(ctx, "org access not synced; will retry", "org", org, "err", err)
	}
	return err
}

// after runs what follows a committed change of a team row: its events,
// then the org's access. Failures are retried by Sweep, so the caller's
// change stands.
func (s *Service) afterTeam(ctx context.Context, t registry.Team) {
	_ = s.flushTeam(ctx, t)
	_ = s.syncAccess(ctx, t.OrgID)
}

// BeginInstall returns the gateway URL that starts an "Add to Slack"
// install for org on behalf of caller, an admin.
func (s *Service) BeginInstall(ctx context.Context, org string, caller registry.Caller, teamHint string) (string, error) {
	if err := registry.ValidateOrgID(org); err != nil {
		return "", err
	}
	if err := registry.RequireAdmin(caller, "adding a Slack team"); err != nil {
		return "", err
	}
	if caller.User.ID == "" {
		return "", registry.Invalid("caller.user.id is required")
	}
	if teamHint != "" {
		if err := registry.ValidateTeamID(teamHint); err != nil {
			return "", err
		}
	}
	raw, t, err := s.tickets.Issue(installticket.Ticket{OrgID: org, AdminID: caller.User.ID, AdminName: caller.User.Name, TeamHint: teamHint}, s.cfg.TicketTTL)
	if err != nil {
		return "", err
	}
	q := url.Values{"org": {org}, "admin": {caller.User.ID}, "ticket": {raw}}
	s.log.InfoContext(ctx, "install begun", "org", org, "admin", caller.User.ID, "expires", t.Expires())
	return s.cfg.InstallURL + "?" + q.Encode(), nil
}

// CompleteInstallInput is a verified OAuth exchange, tokens in the clear.
type CompleteInstallInput struct {
	OrgID        string
	By           registry.User
	Team         registry.TeamInfo
	BotToken     string
	RefreshToken string
	ExpiresAt    time.Time
}

// CompleteInstall stores an authorised team for an org, adding it or
// updating its row, and announces it.
func (s *Service) CompleteInstall(ctx context.Context, in CompleteInstallInput) (registry.Team, bool, error) {
	if err := registry.ValidateOrgID(in.OrgID); err != nil {
		return registry.Team{}, false, err
	}
	if err := registry.ValidateTeamID(in.Team.TeamID); err != nil {
		return registry.Team{}, false, err
	}
	if in.BotToken == "" {
		return registry.Team{}, false, registry.Invalid("bot_token is required")
	}
	bot, err := s.seal(in.OrgID, in.Team.TeamID, fieldBot, in.BotToken)
	if err != nil {
		return registry.Team{}, false, err
	}
	refresh, err := s.seal(in.OrgID, in.Team.TeamID, fieldRefresh, in.RefreshToken)
	if err != nil {
		return registry.Team{}, false, err
	}
	inst := registry.Install{OrgID: in.OrgID, By: in.By, Team: in.Team, BotToken: bot, RefreshToken: refresh, TokenExpiresAt: in.ExpiresAt}
	if err := inst.Validate(); err != nil {
		return registry.Team{}, false, err
	}
	defer s.lockOrg(in.OrgID)()
	// The org's switch exists from its first install on (and is on).
	if _, _, err := s.mutateOrg(ctx, in.OrgID, func(cur *registry.Org) (*registry.Org, error) {
		if cur != nil {
			return nil, nil
		}
		o := registry.NewOrg(in.OrgID, s.now())
		return &o, nil
	}); err != nil {
		return registry.Team{}, false, err
	}
	var reinstall bool
	t, _, err := s.mutateTeam(ctx, in.OrgID, in.Team.TeamID, func(cur *registry.Team) (*registry.Team, error) {
		next, re, err := registry.ApplyInstall(cur, inst, s.now())
		if err != nil {
			return nil, err
		}
		reinstall = re
		return &next, nil
	})
	if err != nil {
		return registry.Team{}, false, err
	}
	s.members.forgetTeam(in.Team.TeamID)
	s.dirs.forget(in.Team.TeamID)
	s.log.InfoContext(ctx, "team installed", "org", in.OrgID, "team", in.Team.TeamID, "reinstall", reinstall,
		"by", in.By.ID, "rotating", t.Rotating(), "key_id", t.BotToken.KeyID)
	s.afterTeam(ctx, t)
	return t, reinstall, nil
}

// RemoveTeam takes a team away from an org on an admin's request.
// Removing a removed team succeeds and changes nothing.
func (s *Service) RemoveTeam(ctx context.Context, org, team string, caller registry.Caller) error {
	if err := registry.ValidateOrgID(org); err != nil {
		return err
	}
	if err := registry.ValidateTeamID(team); err != nil {
		return err
	}
	if err := registry.RequireAdmin(caller, "removing a Slack team"); err != nil {
		return err
	}
	unlock := s.lockOrg(org)
	var held registry.Team // the row as it was, with its tokens
	t, found, err := s.mutateTeam(ctx, org, team, func(cur *registry.Team) (*registry.Team, error) {
		if cur == nil {
			return nil, registry.NotFoundTeam(org, team)
		}
		held = *cur
		if !cur.Remove(registry.ReasonAdmin, caller.User, s.now()) {
			return nil, nil
		}
		return cur, nil
	})
	if err != nil {
		unlock()
		return err
	}
	if found {
		s.log.InfoContext(ctx, "team removed", "org", org, "team", team, "by", caller.User.ID, "reason", "admin")
		s.afterTeam(ctx, t)
	}
	unlock()
	if found {
		s.revokeAtSlack(ctx, held)
	}
	return nil
}

// SetIntegration disables or enables an org's integration on an admin's
// request. Repeating the current state succeeds and changes nothing.
func (s *Service) SetIntegration(ctx context.Context, org string, enabled bool, caller registry.Caller) error {
	if err := registry.ValidateOrgID(org); err != nil {
		return err
	}
	action := "disabling the Slack integration"
	if enabled {
		action = "enabling the Slack integration"
	}
	if err := registry.RequireAdmin(caller, action); err != nil {
		return err
	}
	defer s.lockOrg(org)()
	o, changed, err := s.mutateOrg(ctx, org, func(cur *registry.Org) (*registry.Org, error) {
		if cur == nil {
			return nil, registry.NotFoundOrg(org)
		}
		if enabled && !cur.Enable(caller.User, s.now()) || !enabled && !cur.Disable(caller.User, s.now()) {
			return nil, nil
		}
		return cur, nil
	})
	if err != nil {
		return err
	}
	if changed {
		s.log.InfoContext(ctx, "integration switched", "org", org, "enabled", enabled, "by", caller.User.ID)
	}
	_ = s.flushOrg(ctx, o)
	_ = s.syncAccess(ctx, org)
	return nil
}

// Integration is an org's switch as reported.
type Integration struct {
	Enabled     bool
	ActiveTeams int
	ChangedAt   time.Time
}

// GetIntegration reports an org's switch and how many teams it can use.
func (s *Service) GetIntegration(ctx context.Context, org string) (Integration, error) {
	if err := registry.ValidateOrgID(org); err != nil {
		return Integration{}, err
	}
	o, found, err := s.repo.Org(ctx, org)
	if err != nil {
		return Integration{}, err
	}
	if !found {
		return Integration{}, registry.NotFoundOrg(org)
	}
	teams, err := s.repo.TeamsOfOrg(ctx, org)
	if err != nil {
		return Integration{}, err
	}
	n := 0
	for i := range teams {
		if teams[i].Usable() {
			n++
		}
	}
	return Integration{Enabled: o.Enabled, ActiveTeams: n, ChangedAt: o.ChangedAt}, nil
}

// ListTeams lists an org's teams: active and broken ones, plus removed
// ones with includeRemoved. With memberEmail, only active teams where that
// email is a member (checked with the team's bot token, cached).
func (s *Service) ListTeams(ctx context.Context, org, memberEmail string, includeRemoved bool) ([]registry.Team, bool, error) {
	if err := registry.ValidateOrgID(org); err != nil {
		return nil, false, err
	}
	memberEmail = strings.TrimSpace(memberEmail)
	if memberEmail != "" && (!strings.Contains(memberEmail, "@") || len(memberEmail) > 254) {
		return nil, false, registry.Invalid("member_email %q is not an email address", memberEmail)
	}
	o, found, err := s.repo.Org(ctx, org)
	if err != nil {
		return nil, false, err
	}
	if !found {
		return nil, false, registry.NotFoundOrg(org)
	}
	teams, err := s.repo.TeamsOfOrg(ctx, org)
	if err != nil {
		return nil, false, err
	}
	var out []registry.Team
	for _, t := range teams {
		switch {
		case memberEmail != "":
			if !t.Usable() {
				continue
			}
			ok, err := s.isMember(ctx, &t, memberEmail)
			if err != nil {
				return nil, false, err
			}
			if !ok {
				continue
			}
		case t.Status == registry.StatusRemoved && !includeRemoved:
			continue
		}
		out = append(out, t)
	}
	return out, o.Enabled, nil
}

func (s *Service) isMember(ctx context.Context, t *registry.Team, email string) (bool, error) {
	if v, ok := s.members.get(t.TeamID, email, s.now()); ok {
		return v, nil
	}
	token, err := s.usableToken(ctx, *t)
	if err != nil {
		return false, err
	}
	member, err := s.slack.IsMember(ctx, token, email)
	if err != nil {
		return false, unavailable("checking membership in team %s: %v", t.TeamID, err)
	}
	ttl := s.cfg.MembershipTTL
	if !member {
		ttl /= 5
	}
	s.members.put(t.TeamID, email, member, s.now().Add(ttl))
	return member, nil
}

// GetTeam returns one of an org's teams, whatever its status.
func (s *Service) GetTeam(ctx context.Context, org, team string) (registry.Team, error) {
	if err := registry.ValidateOrgID(org); err != nil {
		return registry.Team{}, err
	}
	if err := registry.ValidateTeamID(team); err != nil {
		return registry.Team{}, err
	}
	t, found, err := s.repo.Team(ctx, org, team)
	if err != nil {
		return registry.Team{}, err
	}
	if !found {
		return registry.Team{}, registry.NotFoundTeam(org, team)
	}
	return t, nil
}

// ResolveTeam lists the orgs that can use a Slack team, and whether any
// of them has the integration on.
func (s *Service) ResolveTeam(ctx context.Context, team string) ([]string, bool, error) {
	if err := registry.ValidateTeamID(team); err != nil {
		return nil, false, err
	}
	rows, err := s.repo.RowsOfTeam(ctx, team)
	if err != nil {
		return nil, false, err
	}
	var orgs []string
	enabled := false
	for _, r := range rows {
		if !r.Usable() {
			continue
		}
		orgs = append(orgs, r.OrgID)
		o, found, err := s.repo.Org(ctx, r.OrgID)
		if err != nil {
			return nil, false, err
		}
		if !found || o.Enabled {
			enabled = true
		}
	}
	return orgs, enabled, nil
}

var slackUserIDRe = regexp.MustCompile(`^[UW][A-Z0-9]{2,31}$`)

// GetSlackUser returns a Slack user's profile as one of the team's bot
// tokens sees it (users.info), cached for MembershipTTL. The team must be
// active in some org.
func (s *Service) GetSlackUser(ctx context.Context, team, user string) (SlackUser, error) {
	if err := registry.ValidateTeamID(team); err != nil {
		return SlackUser{}, err
	}
	if !slackUserIDRe.MatchString(user) {
		return SlackUser{}, registry.Invalid("user_id %q is not a Slack user id", user)
	}
	if u, ok := s.users.get(team, user, s.now()); ok {
		return u, nil
	}
	rows, err := s.repo.RowsOfTeam(ctx, team)
	if err != nil {
		return SlackUser{}, err
	}
	i := slices.IndexFunc(rows, func(t registry.Team) bool { return t.Usable() })
	if i < 0 {
		if slices.ContainsFunc(rows, func(t registry.Team) bool { return t.Status == registry.StatusBroken }) {
			return SlackUser{}, needsReauth(team)
		}
		return SlackUser{}, &registry.Error{Kind: registry.ErrNotFound, Msg: fmt.Sprintf("team %s is not connected to any org", team)}
	}
	token, err := s.usableToken(ctx, rows[i])
	if err != nil {
		return SlackUser{}, err
	}
	u, found, err := s.slack.UserInfo(ctx, token, user)
	if err != nil {
		if dead := s.tokenDied(ctx, rows[i], err); dead != nil {
			return SlackUser{}, dead
		}
		return SlackUser{}, unavailable("looking up user %s in team %s: %v", user, team, err)
	}
	if !found {
		return SlackUser{}, &registry.Error{Kind: registry.ErrNotFound, Msg: fmt.Sprintf("user %s is not in team %s", user, team)}
	}
	s.users.put(team, user, u, s.now().Add(s.cfg.MembershipTTL))
	return u, nil
}

// BotToken is what the egress gets.
type BotToken struct {
	Token     string
	BotUserID string
	ExpiresAt time.Time
}

// GetBotToken returns a usable bot token for an org's team, refreshing a
// rotated token first if it has expired. It refuses a removed or broken
// team and a disabled org.
func (s *Service) GetBotToken(ctx context.Context, org, team string) (BotToken, error) {
	t, err := s.GetTeam(ctx, org, team)
	if err != nil {
		return BotToken{}, err
	}
	o, found, err := s.repo.Org(ctx, org)
	if err != nil {
		return BotToken{}, err
	}
	var op *registry.Org
	if found {
		op = &o
	}
	if err := registry.Unusable(op, &t); err != nil {
		return BotToken{}, err
	}
	if s.expired(&t) {
		if t, err = s.refresh(ctx, t); err != nil {
			return BotToken{}, err
		}
	}
	token, err := s.open(&t, fieldBot)
	if err != nil {
		return BotToken{}, err
	}
	return BotToken{Token: token, BotUserID: t.BotUserID, ExpiresAt: t.TokenExpiresAt}, nil
}

// expired reports whether a team's token has expired or is about to: within
// ExpirySkew, or a tenth of its lifetime if that is shorter.
func (s *Service) expired(t *registry.Team) bool {
	skew := s.cfg.ExpirySkew
	if life := t.TokenExpiresAt.Sub(t.TokenIssuedAt); life > 0 {
		skew = min(skew, life/10)
	}
	return t.TokenExpired(s.now(), skew)
}

// usableToken opens an active team's bot token, refreshing it if expired.
func (s *Service) usableToken(ctx context.Context, t registry.Team) (string, error) {
	if s.expired(&t) {
		var err error
		if t, err = s.refresh(ctx, t); err != nil {
			return "", err
		}
	}
	return s.open(&t, fieldBot)
}

// TokenFailure is the outcome of ReportTokenFailure.
type TokenFailure struct {
	Refreshed bool
	Status    registry.Status
}

// ReportTokenFailure handles the egress's report that a team's token got
// slackError. The current token is checked with auth.test first: if it
// works (the reporter held an older one), the answer is "use the current
// token". If Slack says it is dead, a rotating token is refreshed; one that
// cannot be refreshed marks the team broken, which takes it out of the
// org's access until an admin re-authorises it.
func (s *Service) ReportTokenFailure(ctx context.Context, org, team, slackError string) (TokenFailure, error) {
	t, err := s.GetTeam(ctx, org, team)
	if err != nil {
		return TokenFailure{}, err
	}
	if !t.Usable() {
		return TokenFailure{Status: t.Status}, nil
	}
	s.log.InfoContext(ctx, "token failure reported", "org", org, "team", team, "slack_error", slackError)
	token, err := s.open(&t, fieldBot)
	if err != nil {
		return TokenFailure{}, err
	}
	err = s.slack.AuthTest(ctx, token)
	code := slackCode(err)
	switch {
	case err == nil:
		return TokenFailure{Refreshed: true, Status: registry.StatusActive}, nil
	case !deadTokenCodes[code]:
		return TokenFailure{}, unavailable("checking the token of team %s: %v", team, err)
	case t.Rotating():
		nt, err := s.refresh(ctx, t)
		if errors.Is(err, registry.ErrFailedPrecondition) {
			return TokenFailure{Status: registry.StatusBroken}, nil
		}
		if err != nil {
			return TokenFailure{}, err
		}
		return TokenFailure{Refreshed: true, Status: nt.Status}, nil
	}
	if err := s.markBroken(ctx, t, code); err != nil {
		return TokenFailure{}, err
	}
	return TokenFailure{Status: registry.StatusBroken}, nil
}

func (s *Service) markBroken(ctx context.Context, t registry.Team, why string) error {
	defer s.lockOrg(t.OrgID)()
	nt, changed, err := s.mutateTeam(ctx, t.OrgID, t.TeamID, func(cur *registry.Team) (*registry.Team, error) {
		if cur == nil || cur.Generation != t.Generation || cur.TokenSerial != t.TokenSerial || !cur.MarkBroken(s.now()) {
			return nil, nil
		}
		return cur, nil
	})
	if err != nil {
		return err
	}
	if changed {
		s.log.WarnContext(ctx, "team marked broken: its token no longer works", "org", t.OrgID, "team", t.TeamID, "slack_error", why)
		s.metrics.markedForReauth(why)
	}
	s.afterTeam(ctx, nt)
	return nil
}

// refreshTimeout bounds one refresh. It runs detached from the caller's
// context: abandoning an oauth.v2.access call half-way could burn the
// single-use refresh token without storing its successor.
const refreshTimeout = 20 * time.Second

// refresh trades a rotating team's refresh token for a new pair, once at a
// time per row in this replica. If the row changed meanwhile (another
// replica refreshed it), the stored row is returned.
func (s *Service) refresh(ctx context.Context, t registry.Team) (registry.Team, error) {
	ch := s.refreshes.DoChan(t.ID(), func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
		defer cancel()
		return s.doRefresh(rctx, t)
	})
	select {
	case <-ctx.Done():
		return registry.Team{}, ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return registry.Team{}, r.Err
		}
		return r.Val.(registry.Team), nil
	}
}

func (s *Service) doRefresh(ctx context.Context, seen registry.Team) (registry.Team, error) {
	cur, found, err := s.repo.Team(ctx, seen.OrgID, seen.TeamID)
	if err != nil {
		return registry.Team{}, err
	}
	if !found {
		return registry.Team{}, registry.NotFoundTeam(seen.OrgID, seen.TeamID)
	}
	if err := registry.Unusable(nil, &cur); err != nil {
		return registry.Team{}, err
	}
	if cur.TokenSerial != seen.TokenSerial && !s.expired(&cur) {
		return cur, nil // refreshed meanwhile
	}
	if !cur.Rotating() {
		return registry.Team{}, &registry.Error{Kind: registry.ErrFailedPrecondition,
			Msg: fmt.Sprintf("the token of team %s expired and cannot be refreshed: an admin must re-authorise it", cur.TeamID)}
	}
	rt, err := s.open(&cur, fieldRefresh)
	if err != nil {
		return registry.Team{}, err
	}
	toks, err := s.slack.Refresh(ctx, rt)
	if err != nil {
		code := slackCode(err)
		if !deadTokenCodes[code] {
			return registry.Team{}, unavailable("refreshing the token of team %s: %v", cur.TeamID, err)
		}
		// Dead refresh token, unless another replica refreshed first.
		again, found, lerr := s.repo.Team(ctx, cur.OrgID, cur.TeamID)
		if lerr == nil && found && again.Usable() && again.TokenSerial != cur.TokenSerial {
			return again, nil
		}
		if err := s.markBroken(ctx, cur, code); err != nil {
			return registry.Team{}, err
		}
		return registry.Team{}, &registry.Error{Kind: registry.ErrFailedPrecondition,
			Msg: fmt.Sprintf("team %s of org %s must be re-authorised: Slack refused its refresh token (%s)", cur.TeamID, cur.OrgID, code)}
	}
	if toks.AccessToken == "" || toks.RefreshToken == "" {
		return registry.Team{}, unavailable("refreshing the token of team %s: Slack's answer has no token", cur.TeamID)
	}
	bot, err := s.seal(cur.OrgID, cur.TeamID, fieldBot, toks.AccessToken)
	if err != nil {
		return registry.Team{}, err
	}
	refresh, err := s.seal(cur.OrgID, cur.TeamID, fieldRefresh, toks.RefreshToken)
	if err != nil {
		return registry.Team{}, err
	}
	now := s.now()
	gen, serial := cur.Generation, cur.TokenSerial
	stored, _, err := s.mutateTeam(ctx, cur.OrgID, cur.TeamID, func(row *registry.Team) (*registry.Team, error) {
		if row == nil {
			return nil, registry.NotFoundTeam(cur.OrgID, cur.TeamID)
		}
		if err := row.ApplyRefresh(gen, serial, bot, refresh, toks.ExpiresAt, now); err != nil {
			return nil, err
		}
		return row, nil
	})
	if err != nil {
		// The new pair is lost with the row's change (a removal or a
		// reinstall, which brings its own tokens).
		s.log.WarnContext(ctx, "refreshed token not stored: the team changed meanwhile", "org", cur.OrgID, "team", cur.TeamID, "err", err)
		return registry.Team{}, err
	}
	s.log.InfoContext(ctx, "token refreshed", "org", cur.OrgID, "team", cur.TeamID, "expires", toks.ExpiresAt)
	return stored, nil
}

// RefreshDue refreshes every rotating token that is due, and reports how
// many were refreshed. The background loop calls it.
func (s *Service) RefreshDue(ctx context.Context) (int, error) {
	teams, err := s.repo.RotatingTeams(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, t := range teams {
		if !t.RefreshDue(s.now()) {
			continue
		}
		if _, err := s.refresh(ctx, t); err != nil {
			errs = append(errs, fmt.Errorf("team %s: %w", t.ID(), err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// Sweep publishes events left pending by a failed publish and retries
// failed access syncs. all=true syncs every org's access (at start-up).
func (s *Service) Sweep(ctx context.Context, all bool) error {
	var errs []error
	teams, err := s.repo.DirtyTeams(ctx)
	if err != nil {
		return err
	}
	orgs := map[string]bool{}
	for _, t := range teams {
		if err := s.flushTeam(ctx, t); err != nil {
			errs = append(errs, err)
		}
		orgs[t.OrgID] = true
	}
	dirtyOrgs, err := s.repo.DirtyOrgs(ctx)
	if err != nil {
		return err
	}
	for _, o := range dirtyOrgs {
		if err := s.flushOrg(ctx, o); err != nil {
			errs = append(errs, err)
		}
		orgs[o.ID] = true
	}
	s.retryMu.Lock()
	for o := range s.retryAccess {
		orgs[o] = true
	}
	s.retryMu.Unlock()
	if all {
		ids, err := s.repo.OrgIDs(ctx)
		if err != nil {
			return err
		}
		for _, id := range ids {
			orgs[id] = true
		}
	}
	for org := range orgs {
		if err := s.syncAccess(ctx, org); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Slack events the registry acts on.
const (
	EventAppUninstalled = "app_uninstalled"
	EventTokensRevoked  = "tokens_revoked"
)

// SlackEvent is an Events API callback that concerns the registry.
type SlackEvent struct {
	EventID         string
	TeamID          string
	Type            string
	RevokedBotUsers []string
	EventTime       time.Time
}

// HandleSlackEvent removes a team from every org that has it when Slack
// reports app_uninstalled, or tokens_revoked for its bot. Either order and
// any repetition remove each row once and announce it once; an event older
// than the row's install (a late redelivery) is ignored.
func (s *Service) HandleSlackEvent(ctx context.Context, ev SlackEvent) error {
	var reason registry.RemovalReason
	switch ev.Type {
	case EventAppUninstalled:
		reason = registry.ReasonAppUninstalled
	case EventTokensRevoked:
		if len(ev.RevokedBotUsers) == 0 {
			return nil // only user tokens, which the registry does not hold
		}
		reason = registry.ReasonTokensRevoked
	default:
		return nil
	}
	if err := registry.ValidateTeamID(ev.TeamID); err != nil {
		return err
	}
	rows, err := s.repo.RowsOfTeam(ctx, ev.TeamID)
	if err != nil {
		return err
	}
	var errs []error
	for _, row := range rows {
		if reason == registry.ReasonTokensRevoked && !slices.Contains(ev.RevokedBotUsers, row.BotUserID) {
			continue
		}
		if err := s.removeBySlack(ctx, row, reason, ev); err != nil {
			errs = append(errs, err)
		}
	}
	s.members.forgetTeam(ev.TeamID)
	s.dirs.forget(ev.TeamID)
	return errors.Join(errs...)
}

func (s *Service) removeBySlack(ctx context.Context, row registry.Team, reason registry.RemovalReason, ev SlackEvent) error {
	defer s.lockOrg(row.OrgID)()
	removed := false
	t, found, err := s.mutateTeam(ctx, row.OrgID, row.TeamID, func(cur *registry.Team) (*registry.Team, error) {
		removed = false
		if cur == nil || cur.StaleSlackEvent(ev.EventTime) || !cur.Remove(reason, registry.User{}, s.now()) {
			return nil, nil
		}
		removed = true
		return cur, nil
	})
	if err != nil {
		return err
	}
	if !found {
		return nil
	}
	if removed {
		s.log.InfoContext(ctx, "team removed by Slack", "org", t.OrgID, "team", t.TeamID, "slack_event", ev.Type, "slack_event_id", ev.EventID)
	}
	// Pending events are published even when this delivery changed
	// nothing: the first one may have stored the removal and died before
	// publishing it.
	if err := s.flushTeam(ctx, t); err != nil {
		return err
	}
	return s.syncAccess(ctx, t.OrgID)
}
