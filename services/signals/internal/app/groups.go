package app

import (
	"sync"
	"time"

	"github.com/crmslack/crmslack/services/signals/internal/burst"
)

// maxCachedGroups bounds the groups kept in memory; past it, groups whose
// window is over are dropped (they are read back from the store if their
// customer writes again).
const maxCachedGroups = 50_000

// groupCache keeps the groups this replica wrote, with their revision, so a
// signal costs one conditional write instead of a read and a write. The
// store stays the truth: a write at a stale revision fails and the group is
// read back.
type groupCache struct {
	mu     sync.Mutex
	window time.Duration
	m      map[string]cachedGroup
}

type cachedGroup struct {
	g       burst.Group
	rev     uint64
	touched time.Time
}

func (c *groupCache) get(key string) (*burst.Group, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok {
		return nil, 0
	}
	g := e.g
	return &g, e.rev
}

func (c *groupCache) put(key string, g burst.Group, rev uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]cachedGroup{}
	}
	if len(c.m) >= maxCachedGroups {
		for k, e := range c.m {
			if now.Sub(e.touched) > c.window {
				delete(c.m, k)
			}
		}
	}
	c.m[key] = cachedGroup{g: g, rev: rev, touched: now}
}

func (c *groupCache) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
}
