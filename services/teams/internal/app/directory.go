package app

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/crmslack/crmslack/services/teams/internal/registry"
)

// ScopePostPublic lets a bot post in public channels it is not a member of.
const ScopePostPublic = "chat:write.public"

// SlackChannel is a conversation as conversations.list reports it.
type SlackChannel struct {
	ID       string
	Name     string
	Private  bool
	Member   bool
	Archived bool
}

// SlackMember is a person or bot as users.list reports it.
type SlackMember struct {
	ID, Name, RealName, Email string
	Deleted, Bot              bool
}

// Directory is where an org's CRM data may go in one team: its channels
// and its active people, as the team's bot sees them.
type Directory struct {
	Channels  []DirectoryChannel
	Users     []DirectoryUser
	FetchedAt time.Time
}

// DirectoryChannel is a channel of the team, not archived.
type DirectoryChannel struct {
	ID, Name string
	Private  bool
	// Member: the bot is in the channel. CanPost: the bot may post there
	// (a member, or a public channel with chat:write.public).
	Member, CanPost bool
}

// DirectoryUser is an active person of the team (no bots).
type DirectoryUser struct {
	ID, Name, RealName, Email string
}

// listing is a team's directory as cached: the facts from Slack, before
// the row's scopes decide where the bot may post.
type listing struct {
	channels []SlackChannel
	users    []SlackMember
	fetched  time.Time
}

// directoryCache keeps one listing per team. Teams are few (hundreds), so
// it needs no bound beyond expiry; expired listings are dropped when a
// listing is stored.
type directoryCache struct {
	mu      sync.Mutex
	entries map[string]listing
}

func newDirectoryCache() *directoryCache { return &directoryCache{entries: map[string]listing{}} }

func (c *directoryCache) get(team string, now time.Time, ttl time.Duration) (listing, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.entries[team]
	if !ok || now.Sub(l.fetched) >= ttl {
		return listing{}, false
	}
	return l, true
}

func (c *directoryCache) put(team string, l listing, now time.Time, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		if now.Sub(e.fetched) >= ttl {
			delete(c.entries, k)
		}
	}
	c.entries[team] = l
}

func (c *directoryCache) forget(team string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, team)
}

// directoryTimeout bounds one listing from Slack, which pages through
// conversations.list and users.list and may wait out a rate limit.
const directoryTimeout = 60 * time.Second

// ListDirectory returns the channels and people of one of the org's active
// teams, cached for DirectoryTTL per team. It refuses a team that is not
// the org's (NotFound), removed or broken, or an org whose integration is
// off (FailedPrecondition).
func (s *Service) ListDirectory(ctx context.Context, org, team string) (Directory, error) {
	t, err := s.GetTeam(ctx, org, team)
	if err != nil {
		return Directory{}, err
	}
	o, found, err := s.repo.Org(ctx, org)
	if err != nil {
		return Directory{}, err
	}
	var op *registry.Org
	if found {
		op = &o
	}
	if err := registry.Unusable(op, &t); err != nil {
		return Directory{}, err
	}
	l, ok := s.dirs.get(team, s.now(), s.cfg.DirectoryTTL)
	if !ok {
		if l, err = s.loadListing(ctx, t); err != nil {
			return Directory{}, err
		}
	}
	return directoryOf(l, slices.Contains(t.Scopes, ScopePostPublic)), nil
}

// loadListing reads a team's listing from Slack, once at a time per team:
// concurrent misses share one listing. It runs detached from the caller,
// bounded by directoryTimeout, so one impatient caller does not waste the
// calls the others wait for.
func (s *Service) loadListing(ctx context.Context, t registry.Team) (listing, error) {
	ch := s.dirLoads.DoChan(t.TeamID, func() (any, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), directoryTimeout)
		defer cancel()
		token, err := s.usableToken(lctx, t)
		if err != nil {
			return listing{}, err
		}
		chans, err := s.slack.Channels(lctx, token)
		if err != nil {
			return listing{}, slackFailure(err, "listing the channels of team %s", t.TeamID)
		}
		users, err := s.slack.Users(lctx, token)
		if err != nil {
			return listing{}, slackFailure(err, "listing the users of team %s", t.TeamID)
		}
		l := listing{channels: chans, users: users, fetched: s.now()}
		s.dirs.put(t.TeamID, l, l.fetched, s.cfg.DirectoryTTL)
		s.log.InfoContext(lctx, "team directory read from Slack", "team", t.TeamID, "channels", len(chans), "users", len(users))
		return l, nil
	})
	select {
	case <-ctx.Done():
		return listing{}, ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return listing{}, r.Err
		}
		return r.Val.(listing), nil
	}
}

// slackFailure: a missing scope needs an admin to re-authorise the team;
// anything else may pass.
func slackFailure(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	switch code := slackCode(err); {
	case code == "missing_scope":
		return &registry.Error{Kind: registry.ErrFailedPrecondition,
			Msg: what + ": the app lacks a scope (channels:read, groups:read, users:read, users:read.email); an admin must re-authorise the team"}
	case deadTokenCodes[code]:
		return &registry.Error{Kind: registry.ErrFailedPrecondition, Msg: what + ": Slack refused the team's token (" + code + ")"}
	}
	return unavailable("%s: %v", what, err)
}

// directoryOf keeps what may be shared to: channels not archived, people
// neither deactivated nor bots. Slackbot is a bot for this purpose.
func directoryOf(l listing, postPublic bool) Directory {
	d := Directory{FetchedAt: l.fetched}
	for _, c := range l.channels {
		if c.Archived {
			continue
		}
		d.Channels = append(d.Channels, DirectoryChannel{
			ID: c.ID, Name: c.Name, Private: c.Private, Member: c.Member,
			CanPost: c.Member || (!c.Private && postPublic),
		})
	}
	for _, u := range l.users {
		if u.Deleted || u.Bot || u.ID == "USLACKBOT" {
			continue
		}
		d.Users = append(d.Users, DirectoryUser{ID: u.ID, Name: u.Name, RealName: u.RealName, Email: u.Email})
	}
	return d
}
