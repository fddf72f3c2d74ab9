// Package targets turns a command's target (a channel, a Slack user, or a
// CRM user's email) into the conversation to post in, within one team:
// users.lookupByEmail for an email, conversations.open for a user's DM. Both
// answers are cached per team, with expiry, so a burst of messages to one
// person costs one lookup; concurrent misses for the same key share one call.
// A "not found" answer is cached for a shorter time.
package targets

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Target is where a message goes inside one team; exactly one field is set.
type Target struct {
	ChannelID string
	UserID    string
	Email     string
}

// String describes the target for logs and reasons; an email is shown as is
// (it is the CRM user's address, not a secret), never a token.
func (t Target) String() string {
	switch {
	case t.ChannelID != "":
		return "channel " + t.ChannelID
	case t.UserID != "":
		return "user " + t.UserID
	case t.Email != "":
		return "email " + t.Email
	}
	return "no target"
}

// ErrNoTarget is returned for a Target with no field set.
var ErrNoTarget = errors.New("the command names no target")

// Slack is what the resolver needs from the Web API; the caller's
// implementation paces the calls and knows the team's token.
type Slack interface {
	LookupByEmail(ctx context.Context, team, email string) (userID string, err error)
	OpenDM(ctx context.Context, team, userID string) (channelID string, err error)
}

// Config sets the cache lifetimes; zero values take the defaults.
type Config struct {
	// UserTTL is how long an email → user answer is kept. Default 1h.
	UserTTL time.Duration
	// NotFoundTTL is how long a "no such user" answer is kept. Default 5m.
	NotFoundTTL time.Duration
	// DMTTL is how long a user → DM channel answer is kept; DM ids never
	// change, so this only bounds memory. Default 24h.
	DMTTL time.Duration
	// MaxEntries bounds each cache; at the bound, expired entries are
	// dropped, then the whole cache if still full. Default 100,000.
	MaxEntries int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// IsNotFound reports whether err says the target does not exist; the
// resolver caches such errors. Set by the caller (it knows Slack's errors).
type IsNotFound func(error) bool

// Resolver resolves and caches. Safe for concurrent use.
type Resolver struct {
	api      Slack
	notFound IsNotFound
	cfg      Config

	mu    sync.Mutex
	users map[string]entry // team + "\x00" + email
	dms   map[string]entry // team + "\x00" + user id
	group singleflight.Group
}

type entry struct {
	value   string
	err     error
	expires time.Time
}

// New returns a resolver over api.
func New(api Slack, notFound IsNotFound, cfg Config) *Resolver {
	if cfg.UserTTL <= 0 {
		cfg.UserTTL = time.Hour
	}
	if cfg.NotFoundTTL <= 0 {
		cfg.NotFoundTTL = 5 * time.Minute
	}
	if cfg.DMTTL <= 0 {
		cfg.DMTTL = 24 * time.Hour
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 100_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Resolver{api: api, notFound: notFound, cfg: cfg, users: map[string]entry{}, dms: map[string]entry{}}
}

// Channel returns the conversation id to post to for t in team.
func (r *Resolver) Channel(ctx context.Context, team string, t Target) (string, error) {
	switch {
	case t.ChannelID != "":
		return t.ChannelID, nil
	case t.UserID != "":
		return r.DM(ctx, team, t.UserID)
	case t.Email != "":
		user, err := r.User(ctx, team, t.Email)
		if err != nil {
			return "", err
		}
		return r.DM(ctx, team, user)
	}
	return "", ErrNoTarget
}

// User returns the Slack user of team with email.
func (r *Resolver) User(ctx context.Context, team, email string) (string, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	return r.cached(ctx, r.users, "user", team, email, r.cfg.UserTTL, func(ctx context.Context) (string, error) {
		return r.api.LookupByEmail(ctx, team, email)
	})
}

// DM returns the DM channel with user in team.
func (r *Resolver) DM(ctx context.Context, team, user string) (string, error) {
	return r.cached(ctx, r.dms, "dm", team, user, r.cfg.DMTTL, func(ctx context.Context) (string, error) {
		return r.api.OpenDM(ctx, team, user)
	})
}

func (r *Resolver) cached(ctx context.Context, m map[string]entry, kind, team, key string, ttl time.Duration, load func(context.Context) (string, error)) (string, error) {
	k := team + "\x00" + key
	r.mu.Lock()
	e, ok := m[k]
	r.mu.Unlock()
	if ok && r.cfg.Now().Before(e.expires) {
		if e.err != nil {
			return "", fmt.Errorf("resolving %s %s in team %s (cached): %w", kind, key, team, e.err)
		}
		return e.value, nil
	}
	v, err, _ := r.group.Do(kind+"\x00"+k, func() (any, error) {
		v, err := load(ctx)
		switch {
		case err == nil:
			r.put(m, k, entry{value: v, expires: r.cfg.Now().Add(ttl)})
		case r.notFound != nil && r.notFound(err):
			r.put(m, k, entry{err: err, expires: r.cfg.Now().Add(r.cfg.NotFoundTTL)})
		}
		return v, err
	})
	if err != nil {
		return "", fmt.Errorf("resolving %s %s in team %s: %w", kind, key, team, err)
	}
	return v.(string), nil
}

func (r *Resolver) put(m map[string]entry, k string, e entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(m) >= r.cfg.MaxEntries {
		now := r.cfg.Now()
		for key, old := range m {
			if !now.Before(old.expires) {
				delete(m, key)
			}
		}
		if len(m) >= r.cfg.MaxEntries {
			clear(m)
		}
	}
	m[k] = e
}

// Forget drops everything cached for team (after its token changed hands
// or the team was removed).
func (r *Resolver) Forget(team string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	prefix := team + "\x00"
	for _, m := range []map[string]entry{r.users, r.dms} {
		for k := range m {
			if strings.HasPrefix(k, prefix) {
				delete(m, k)
			}
		}
	}
}
