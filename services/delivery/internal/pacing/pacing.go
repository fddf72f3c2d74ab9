// Package pacing keeps delivery inside Slack's rate limits before Slack has
// to say so: a token bucket per key (a workspace's method tier, one
// channel's chat.postMessage budget), and a pause per key when Slack answers
// 429 anyway, for exactly the Retry-After it gave and only for that key.
//
// Buckets work on reservations: Reserve takes a token now, even one the
// bucket does not have yet, and says how long the caller must wait for it,
// so callers sharing a bucket are served in arrival order without polling.
// Nothing here sleeps except [Pacer.Wait]; the arithmetic runs on an
// injectable clock and is tested with a fake one.
package pacing

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"
)

// Limit is a token bucket: Burst calls at once, refilled at Rate per second.
type Limit struct {
	Rate  float64
	Burst int
}

// PerMinute is n calls a minute with a burst of n, how Slack states its
// tiers ("Tier 3: 50+ per minute").
func PerMinute(n int) Limit { return Limit{Rate: float64(n) / 60, Burst: n} }

// Unlimited is the zero Limit: Reserve never waits for tokens (a pause
// still applies).
var Unlimited = Limit{}

// IsUnlimited reports whether l imposes no rate.
func (l Limit) IsUnlimited() bool { return l.Rate <= 0 }

// Validate reports a limit that cannot work.
func (l Limit) Validate() error {
	if l.IsUnlimited() {
		return nil
	}
	if math.IsInf(l.Rate, 0) || math.IsNaN(l.Rate) || l.Burst < 1 {
		return fmt.Errorf("rate %v with burst %d: rate must be finite and burst at least 1", l.Rate, l.Burst)
	}
	return nil
}

func (l Limit) String() string {
	if l.IsUnlimited() {
		return "unlimited"
	}
	return fmt.Sprintf("%g/s burst %d", l.Rate, l.Burst)
}

// Key names one bucket and the limit it follows.
type Key struct {
	Name  string
	Limit Limit
}

// idleAfter is how long a bucket may sit full and unpaused before it is
// forgotten; one per channel ever posted to would otherwise pile up.
const idleAfter = 10 * time.Minute

// sweepEvery is how many reservations pass between sweeps of idle buckets.
const sweepEvery = 4096

// Pacer holds the buckets. It is safe for concurrent use.
type Pacer struct {
	now func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	calls   int
}

type bucket struct {
	limit Limit
	// tokens at time last; negative when reservations ran ahead of refills.
	tokens float64
	last   time.Time
	// pausedUntil is the end of the newest Retry-After for this key.
	pausedUntil time.Time
}

// New returns a Pacer on the clock now (nil means time.Now).
func New(now func() time.Time) *Pacer {
	if now == nil {
		now = time.Now
	}
	return &Pacer{now: now, buckets: map[string]*bucket{}}
}

// bucketLocked returns key's bucket, created full. A changed limit (a
// reload) keeps the current level.
func (p *Pacer) bucketLocked(k Key, now time.Time) *bucket {
	b := p.buckets[k.Name]
	if b == nil {
		b = &bucket{limit: k.Limit, tokens: float64(k.Limit.Burst), last: now}
		p.buckets[k.Name] = b
		return b
	}
	b.refill(now)
	b.limit = k.Limit
	return b
}

func (b *bucket) refill(now time.Time) {
	if b.limit.IsUnlimited() {
		b.last = now
		return
	}
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = math.Min(float64(b.limit.Burst), b.tokens+elapsed.Seconds()*b.limit.Rate)
		b.last = now
	}
}

// reserveLocked takes a token and returns when it may be used.
func (b *bucket) reserveLocked(now time.Time) time.Time {
	ready := now
	if !b.limit.IsUnlimited() {
		// b.last may lie in the future right after a pause: the bucket
		// refills from the pause's end.
		b.tokens--
		if b.tokens < 0 {
			ready = b.last.Add(time.Duration(math.Ceil(-b.tokens / b.limit.Rate * float64(time.Second))))
		} else if b.last.After(now) {
			ready = b.last
		}
	}
	if b.pausedUntil.After(ready) {
		ready = b.pausedUntil
	}
	return ready
}

// Reserve takes one token from each key's bucket and returns how long the
// caller must wait before making its call: the latest of the keys' refill
// times and pauses. Zero means go now.
func (p *Pacer) Reserve(keys ...Key) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	ready := now
	for _, k := range keys {
		if t := p.bucketLocked(k, now).reserveLocked(now); t.After(ready) {
			ready = t
		}
	}
	p.calls++
	if p.calls%sweepEvery == 0 {
		p.sweepLocked(now)
	}
	return ready.Sub(now)
}

// PausedFor reports how much of key's pause is left.
func (p *Pacer) PausedFor(name string) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.buckets[name]
	if b == nil {
		return 0
	}
	return max(b.pausedUntil.Sub(p.now()), 0)
}

// Pause stops key for d, Slack's Retry-After after a 429: every
// reservation on it waits until then. Slack's bucket is empty when it says
// 429 and has one call's worth when Retry-After ends, so the bucket restarts
// from one token at the pause's end rather than from a burst. A shorter
// pause never cuts a longer one short.
func (p *Pacer) Pause(k Key, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	b := p.bucketLocked(k, now)
	until := now.Add(d)
	if !until.After(b.pausedUntil) {
		return
	}
	b.pausedUntil = until
	if !b.limit.IsUnlimited() {
		b.tokens, b.last = 1, until
	}
}

// Wait reserves a token on every key and sleeps until it may be used or ctx
// ends. A pause that starts while it sleeps (a 429 seen by another caller on
// a shared key) is waited out too.
func (p *Pacer) Wait(ctx context.Context, keys ...Key) error {
	d := p.Reserve(keys...)
	for d > 0 {
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		d = 0
		for _, k := range keys {
			d = max(d, p.PausedFor(k.Name))
		}
	}
	return ctx.Err()
}

// sweepLocked forgets buckets that are full, unpaused and idle.
func (p *Pacer) sweepLocked(now time.Time) {
	for name, b := range p.buckets {
		if now.Sub(b.last) <= idleAfter || now.Sub(b.pausedUntil) <= idleAfter {
			continue
		}
		b.refill(now)
		if b.limit.IsUnlimited() || b.tokens >= float64(b.limit.Burst) {
			delete(p.buckets, name)
		}
	}
}

// Sweep forgets idle buckets now; Reserve also does it every few thousand
// calls.
func (p *Pacer) Sweep() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sweepLocked(p.now())
}

// Len reports how many buckets are held (for tests and a gauge).
func (p *Pacer) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.buckets)
}
