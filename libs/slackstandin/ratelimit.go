package slackstandin

import (
	"errors"
	"math"
	"time"
)

// Limit is a token bucket: it holds up to Burst calls and refills at Rate
// calls per second.
type Limit struct {
	Rate  float64
	Burst int
}

// PerMinute is a bucket of n calls refilled over a minute, how Slack states
// its tiers ("20+ per minute") while tolerating short bursts.
func PerMinute(n int) Limit { return Limit{Rate: float64(n) / 60, Burst: n} }

// Slack's Web API rate tiers, per method per workspace.
var (
	Tier1 = PerMinute(1)
	Tier2 = PerMinute(20)
	Tier3 = PerMinute(50)
	Tier4 = PerMinute(100)
)

func (l Limit) validate() error {
	if l.Rate <= 0 || math.IsInf(l.Rate, 0) || math.IsNaN(l.Rate) || l.Burst < 1 {
		return errors.New("rate must be positive and burst at least 1")
	}
	return nil
}

// RateLimits configures rate limiting.
type RateLimits struct {
	// Disabled turns every limit off.
	Disabled bool
	// Methods overrides a method's tier, per workspace, by method name.
	Methods map[string]Limit
	// PostMessagePerChannel limits chat.postMessage per channel: Slack's
	// "one message per second, short bursts allowed". Default: 1/s, burst 3.
	PostMessagePerChannel Limit
}

// bucket is the state of one token bucket.
type bucket struct {
	tokens float64
	last   time.Time
}

// allow takes one token from the bucket named key, or says how long until
// one is available. The caller holds s.mu.
func (s *Server) allow(key string, l Limit) *rateLimitedError {
	if s.cfg.RateLimits.Disabled {
		return nil
	}
	now := s.now()
	b := s.buckets[key]
	if b == nil {
		b = &bucket{tokens: float64(l.Burst), last: now}
		s.buckets[key] = b
	}
	if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
		b.tokens = math.Min(float64(l.Burst), b.tokens+elapsed*l.Rate)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return nil
	}
	wait := (1 - b.tokens) / l.Rate
	return &rateLimitedError{retryAfter: time.Duration(math.Ceil(wait * float64(time.Second)))}
}
