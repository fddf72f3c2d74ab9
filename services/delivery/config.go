package delivery

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/libs/service"

	"github.com/crmslack/crmslack/services/delivery/internal/deliver"
	"github.com/crmslack/crmslack/services/delivery/internal/pacing"
	"github.com/crmslack/crmslack/services/delivery/internal/partition"
)

// Config is the delivery service's configuration. Each field names its
// environment variable and default; docs/configuration.md lists them too.
type Config struct {
	// Connections are the trust files, NATS_URL, NATS_REPLICAS (of the
	// streams and buckets), MONGODB_URI, DELIVERY_MONGODB_DATABASE (the
	// audit trail, default "delivery"), DELIVERY_GRPC_ADDR
	// (DeliveryAuditService, default 127.0.0.1:9102) and DELIVERY_OPS_ADDR
	// (default 127.0.0.1:9202); see libs/service.
	service.Connections
	// TeamsAddr is TEAMS_ADDR, the team registry's gRPC address (bot
	// tokens). Default 127.0.0.1:9101.
	TeamsAddr string
	// SlackAPIURL is SLACK_API_URL, ending with a slash. Default
	// https://slack.com/api/.
	SlackAPIURL string
	// ResponseURLHosts is DELIVERY_RESPONSE_URL_HOSTS: comma-separated
	// hosts a response_url may point at, besides SLACK_API_URL's host.
	// Default hooks.slack.com.
	ResponseURLHosts []string

	// ChannelRate and ChannelBurst are DELIVERY_CHANNEL_RATE (messages per
	// second, default 1) and DELIVERY_CHANNEL_BURST (default 3): the
	// chat.postMessage pace per channel, Slack's "one per second, short
	// bursts allowed".
	ChannelRate  float64
	ChannelBurst int
	// TierOverrides is DELIVERY_TIER_OVERRIDES: per-workspace method limits
	// replacing Slack's tiers, "method=N/min" or "method=N/s", optionally
	// ":burst", or "method=off"; comma-separated. E.g.
	// "chat.postMessage=600/min,users.lookupByEmail=100/min". Default none
	// (tiers 2-4 as published; chat.postMessage unpaced per workspace).
	TierOverrides map[string]pacing.Limit

	// Concurrency is DELIVERY_CONCURRENCY: Slack calls in flight at once.
	// Default 32.
	Concurrency int
	// MaxInFlight is DELIVERY_MAX_IN_FLIGHT: commands held at once per
	// partition (each partition consumer's MaxAckPending). One channel's
	// backlog beyond it would hold up the rest of its partition, so keep it
	// above the deepest backlog expected. It is a ceiling: the lanes pull
	// a window at a time while they work through a backlog, and reach it
	// only behind channels that cannot go on (internal/lanes). Each held
	// command costs its payload in memory. Default 20000.
	MaxInFlight int

	// Partitions is DELIVERY_PARTITIONS: how many partitions SLACK_OUT's
	// commands are spread over (by org and team), each consumed by one
	// replica at a time; at most this many replicas share the work. All
	// replicas, and the stream's transform, must agree; changing it is a
	// migration (docs/configuration.md). Default 8 (also when zero).
	Partitions int
	// LeaseTTL is DELIVERY_LEASE_TTL: how long a partition lease lives
	// without renewal (renewed every quarter of it, a partition stopped
	// after half of it without one). A crashed replica's partitions are
	// taken over after it, with the commands it held (the new owner rewinds
	// the consumer). Default 6s (also when zero): a takeover within seconds,
	// and 3s of failed renewals, a NATS leader election's usual length,
	// before a partition stops.
	LeaseTTL time.Duration
	// MaxAttempts is DELIVERY_MAX_ATTEMPTS: failed attempts (5xx, network)
	// before a command fails with RETRIES_EXHAUSTED and is dead-lettered.
	// Default 6.
	MaxAttempts int
	// BackoffBase and BackoffMax are DELIVERY_BACKOFF_BASE (default 500ms)
	// and DELIVERY_BACKOFF_MAX (default 30s): exponential back-off with
	// jitter between failed attempts.
	BackoffBase, BackoffMax time.Duration
	// SlackTimeout is DELIVERY_SLACK_TIMEOUT: the bound of one Slack call.
	// Default 15s.
	SlackTimeout time.Duration
	// AckWait is DELIVERY_ACK_WAIT: the command consumer's AckWait. A held
	// command is kept alive once half of it has run (checked every sixth);
	// after a crash, the next owner rewinds the consumer and commands come
	// back at once (after it against a server that cannot). Default 30s.
	AckWait time.Duration
	// MaxDeliver is DELIVERY_MAX_DELIVER: deliveries of one command message
	// (each restart hands held messages back) before the server gives up on
	// it and it is dead-lettered. Default 20.
	MaxDeliver int
	// LedgerTTL is DELIVERY_LEDGER_TTL: how long an idempotency key is
	// remembered. Must exceed the SLACK_OUT stream's 3 days. Default 7d.
	LedgerTTL time.Duration
	// Unconfirmed is DELIVERY_UNCONFIRMED: "fail" (at most once, default)
	// or "repost" (at least once), for a command whose earlier attempt may
	// have reached Slack when the channel's history cannot tell.
	Unconfirmed deliver.Policy
	// Permalinks is DELIVERY_PERMALINKS: ask chat.getPermalink for each
	// post, for DeliverySucceeded.permalink. Default true.
	Permalinks bool
	// AuditBatch and AuditFlush are DELIVERY_AUDIT_BATCH (default 500) and
	// DELIVERY_AUDIT_FLUSH (default 50ms): audit rows per insert, and the
	// longest a row waits for its batch.
	AuditBatch int
	AuditFlush time.Duration

	// Ready, not from the environment, is called once the service serves,
	// with the addresses it bound (tests listen on port 0).
	Ready func(Addrs)
	// Now, not from the environment, is the clock. Default time.Now.
	Now func() time.Time
}

// Addrs are the bound listen addresses, and the instance id this replica
// writes in its partition leases and ledger claims.
type Addrs struct {
	GRPC, Ops string
	Instance  string
}

// withDefaults fills the fields whose zero value means their default (a
// Config written in code, before these fields existed).
func (c Config) withDefaults() Config {
	if c.Partitions == 0 {
		c.Partitions = partition.DefaultCount
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = defaultLeaseTTL
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// defaultLeaseTTL is DELIVERY_LEASE_TTL's default.
const defaultLeaseTTL = 6 * time.Second

// vars are the service's own connection variables and their defaults.
var vars = service.Vars{Prefix: "DELIVERY", Database: "delivery", GRPCAddr: "127.0.0.1:9102", OpsAddr: "127.0.0.1:9202"}

// ConfigFromEnv reads the configuration; problems are recorded in l.
func ConfigFromEnv(l *envconfig.Loader) Config {
	c := Config{
		Connections:  vars.FromEnv(l),
		TeamsAddr:    l.String("TEAMS_ADDR", "127.0.0.1:9101"),
		SlackAPIURL:  l.URL("SLACK_API_URL", "https://slack.com/api/", "http", "https"),
		ChannelBurst: l.Int("DELIVERY_CHANNEL_BURST", 3, 1, 10000),
		Concurrency:  l.Int("DELIVERY_CONCURRENCY", 32, 1, 1024),
		MaxInFlight:  l.Int("DELIVERY_MAX_IN_FLIGHT", 20000, 1, 1_000_000),
		Partitions:   l.Int("DELIVERY_PARTITIONS", partition.DefaultCount, 1, partition.MaxCount),
		LeaseTTL:     l.Duration("DELIVERY_LEASE_TTL", defaultLeaseTTL, time.Second, 10*time.Minute),
		MaxAttempts:  l.Int("DELIVERY_MAX_ATTEMPTS", 6, 1, 100),
		BackoffBase:  l.Duration("DELIVERY_BACKOFF_BASE", 500*time.Millisecond, time.Millisecond, time.Minute),
		BackoffMax:   l.Duration("DELIVERY_BACKOFF_MAX", 30*time.Second, time.Millisecond, time.Hour),
		SlackTimeout: l.Duration("DELIVERY_SLACK_TIMEOUT", 15*time.Second, 100*time.Millisecond, 5*time.Minute),
		AckWait:      l.Duration("DELIVERY_ACK_WAIT", 30*time.Second, time.Second, time.Hour),
		MaxDeliver:   l.Int("DELIVERY_MAX_DELIVER", 20, 2, 10000),
		LedgerTTL:    l.Duration("DELIVERY_LEDGER_TTL", 7*24*time.Hour, time.Minute, 365*24*time.Hour),
		Unconfirmed:  deliver.Policy(l.String("DELIVERY_UNCONFIRMED", string(deliver.AtMostOnce))),
		Permalinks:   l.Bool("DELIVERY_PERMALINKS", true),
		AuditBatch:   l.Int("DELIVERY_AUDIT_BATCH", 500, 1, 10000),
		AuditFlush:   l.Duration("DELIVERY_AUDIT_FLUSH", 50*time.Millisecond, time.Millisecond, time.Minute),
	}
	for _, h := range strings.Split(l.String("DELIVERY_RESPONSE_URL_HOSTS", "hooks.slack.com"), ",") {
		if h = strings.TrimSpace(h); h != "" {
			c.ResponseURLHosts = append(c.ResponseURLHosts, h)
		}
	}
	rate := l.String("DELIVERY_CHANNEL_RATE", "1")
	r, err := strconv.ParseFloat(rate, 64)
	if err != nil || r <= 0 {
		l.Fail("DELIVERY_CHANNEL_RATE", "%q is not a positive number of messages per second", rate)
		r = 1
	}
	c.ChannelRate = r
	if v, ok := l.Lookup("DELIVERY_TIER_OVERRIDES"); ok {
		m, err := ParseTierOverrides(v)
		if err != nil {
			l.Fail("DELIVERY_TIER_OVERRIDES", "%v", err)
		}
		c.TierOverrides = m
	}
	return c
}

// ParseTierOverrides reads "method=N/min[:burst],method=N/s[:burst],method=off".
// A limit per minute has a burst of N by default (Slack's tiers), per second
// a burst of max(1, N).
func ParseTierOverrides(s string) (map[string]pacing.Limit, error) {
	out := map[string]pacing.Limit{}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		method, spec, ok := strings.Cut(item, "=")
		method, spec = strings.TrimSpace(method), strings.TrimSpace(spec)
		if !ok || method == "" || spec == "" {
			return nil, fmt.Errorf("%q: want method=N/min, method=N/s or method=off", item)
		}
		if spec == "off" {
			out[method] = pacing.Unlimited
			continue
		}
		spec, burstStr, hasBurst := strings.Cut(spec, ":")
		num, unit, ok := strings.Cut(spec, "/")
		n, err := strconv.ParseFloat(num, 64)
		if !ok || err != nil || n <= 0 {
			return nil, fmt.Errorf("%q: %q is not N/min or N/s", item, spec)
		}
		var l pacing.Limit
		switch unit {
		case "min", "m":
			l = pacing.Limit{Rate: n / 60, Burst: max(int(n), 1)}
		case "s", "sec":
			l = pacing.Limit{Rate: n, Burst: max(int(n), 1)}
		default:
			return nil, fmt.Errorf("%q: unit %q is not min or s", item, unit)
		}
		if hasBurst {
			b, err := strconv.Atoi(burstStr)
			if err != nil || b < 1 {
				return nil, fmt.Errorf("%q: burst %q is not a whole number ≥ 1", item, burstStr)
			}
			l.Burst = b
		}
		out[method] = l
	}
	return out, nil
}

// Validate reports every invalid field by its variable name.
func (c Config) Validate() error {
	var p envconfig.Problems
	bad := p.Add
	vars.Check(&p, c.Connections)
	p.HostPort(map[string]string{"TEAMS_ADDR": c.TeamsAddr})
	if u, err := url.Parse(c.SlackAPIURL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		bad("SLACK_API_URL", "%q is not an http(s) URL", c.SlackAPIURL)
	} else if !strings.HasSuffix(c.SlackAPIURL, "/") {
		bad("SLACK_API_URL", "must end with a slash, e.g. https://slack.com/api/")
	}
	for _, h := range c.ResponseURLHosts {
		if strings.ContainsAny(h, "/ ") {
			bad("DELIVERY_RESPONSE_URL_HOSTS", "%q is not a host name", h)
		}
	}
	if err := (pacing.Limit{Rate: c.ChannelRate, Burst: c.ChannelBurst}).Validate(); err != nil || c.ChannelRate <= 0 {
		bad("DELIVERY_CHANNEL_RATE/DELIVERY_CHANNEL_BURST", "rate must be positive and burst at least 1")
	}
	for m, l := range c.TierOverrides {
		if err := l.Validate(); err != nil {
			bad("DELIVERY_TIER_OVERRIDES", "%s: %v", m, err)
		}
	}
	positive := map[string]int{
		"DELIVERY_CONCURRENCY": c.Concurrency, "DELIVERY_MAX_IN_FLIGHT": c.MaxInFlight,
		"DELIVERY_MAX_ATTEMPTS": c.MaxAttempts, "DELIVERY_AUDIT_BATCH": c.AuditBatch,
	}
	for name, v := range positive {
		if v < 1 {
			bad(name, "must be at least 1")
		}
	}
	if c.Partitions < 0 || c.Partitions > partition.MaxCount {
		bad("DELIVERY_PARTITIONS", "%d is not between 1 and %d", c.Partitions, partition.MaxCount)
	}
	if c.LeaseTTL != 0 && c.LeaseTTL < time.Second {
		bad("DELIVERY_LEASE_TTL", "must be at least 1s")
	}
	if c.MaxDeliver < 2 {
		bad("DELIVERY_MAX_DELIVER", "must be at least 2")
	}
	for name, d := range map[string]time.Duration{
		"DELIVERY_BACKOFF_BASE": c.BackoffBase, "DELIVERY_BACKOFF_MAX": c.BackoffMax, "DELIVERY_SLACK_TIMEOUT": c.SlackTimeout,
		"DELIVERY_ACK_WAIT": c.AckWait, "DELIVERY_LEDGER_TTL": c.LedgerTTL, "DELIVERY_AUDIT_FLUSH": c.AuditFlush,
	} {
		if d <= 0 {
			bad(name, "must be positive")
		}
	}
	if c.BackoffMax < c.BackoffBase {
		bad("DELIVERY_BACKOFF_MAX", "must not be below DELIVERY_BACKOFF_BASE")
	}
	if c.AckWait < time.Second {
		bad("DELIVERY_ACK_WAIT", "must be at least 1s")
	}
	if c.LedgerTTL > 0 && c.LedgerTTL < 72*time.Hour {
		// Shorter than the stream keeps commands: a command redelivered
		// after its key expired would be posted again.
		bad("DELIVERY_LEDGER_TTL", "%s is shorter than the SLACK_OUT stream's 3 days", c.LedgerTTL)
	}
	if !slices.Contains([]deliver.Policy{deliver.AtMostOnce, deliver.AtLeastOnce}, c.Unconfirmed) {
		bad("DELIVERY_UNCONFIRMED", "%q is not fail or repost", c.Unconfirmed)
	}
	return p.Err()
}
