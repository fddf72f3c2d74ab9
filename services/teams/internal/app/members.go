package app

import (
	"strings"
	"sync"
	"time"
)

// memberCache remembers users.lookupByEmail answers per team, so listing
// a user's teams does not call Slack each time. Bounded: when full, expired
// entries go first, then everything (answers are cheap to get again).
type memberCache struct {
	mu      sync.Mutex
	max     int
	entries map[string]memberEntry
}

type memberEntry struct {
	member  bool
	expires time.Time
}

func newMemberCache(max int) *memberCache {
	return &memberCache{max: max, entries: map[string]memberEntry{}}
}

func memberKey(team, email string) string { return team + "\x00" + strings.ToLower(email) }

func (c *memberCache) get(team, email string, now time.Time) (bool, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[memberKey(team, email)]
	if !ok || !now.Before(e.expires) {
		return false, false
	}
	return e.member, true
}

func (c *memberCache) put(team, email string, member bool, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		now := time.Now()
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.max {
			clear(c.entries)
		}
	}
	c.entries[memberKey(team, email)] = memberEntry{member: member, expires: expires}
}

// forgetTeam drops a team's answers (it was reinstalled or removed).
func (c *memberCache) forgetTeam(team string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	prefix := team + "\x00"
	for k := range c.entries {
		if strings.HasPrefix(k, prefix) {
			delete(c.entries, k)
		}
	}
}

// userCache remembers users.info answers per team and user.
type userCache struct {
	mu      sync.Mutex
	max     int
	entries map[string]userEntry
}

type userEntry struct {
	user    SlackUser
	expires time.Time
}

func newUserCache(max int) *userCache { return &userCache{max: max, entries: map[string]userEntry{}} }

func (c *userCache) get(team, user string, now time.Time) (SlackUser, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[team+"/"+user]
	if !ok || !now.Before(e.expires) {
		return SlackUser{}, false
	}
	return e.user, true
}

func (c *userCache) put(team, user string, u SlackUser, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		clear(c.entries)
	}
	c.entries[team+"/"+user] = userEntry{user: u, expires: expires}
}
