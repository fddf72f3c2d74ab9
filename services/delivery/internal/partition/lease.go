package partition

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/prometheus/client_golang/prometheus"
)

// Bucket is the key-value bucket of partition leases and replica presence:
//
//	lease.<k>          the replica consuming partition k
//	replica.<instance> a running replica
//
// Every entry lives as long as the bucket's TTL (the stream's MaxAge) unless
// its owner writes it again; the owner renews it every quarter of the TTL.
//
// Why the bucket's TTL and not per-key TTLs: nats-server 2.11+ and nats.go
// offer a per-key TTL (KeyTTL, with the bucket's LimitMarkerTTL), but only
// on Create; an Update, the compare-and-set a renewal must be, writes a
// revision without a TTL, which would live forever. With the bucket's MaxAge
// every write, Create or Update, restarts the clock. Expiry leaves no
// marker, so watchers do not see it: replicas try expired partitions at
// each renewal tick, and a released (deleted) lease is seen at once.
const Bucket = "delivery_partitions"

const (
	leasePrefix   = "lease."
	replicaPrefix = "replica."
)

// BucketConfig is the bucket's configuration for leases living ttl.
func BucketConfig(ttl time.Duration, replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "delivery: which replica consumes which SLACK_OUT partition (lease.<k>), and which replicas run (replica.<id>)",
		History:     1,
		TTL:         ttl,
		Replicas:    max(replicas, 1),
		Storage:     jetstream.FileStorage,
	}
}

// EnsureBucket creates or updates the bucket.
func EnsureBucket(ctx context.Context, js jetstream.JetStream, ttl time.Duration, replicas int) (jetstream.KeyValue, error) {
	kv, err := bus.BindKeyValue(ctx, js, BucketConfig(ttl, replicas))
	if err != nil {
		return nil, fmt.Errorf("ensuring bucket %s: %w", Bucket, err)
	}
	return kv, nil
}

// Work runs partition k until ctx ends, stopping gracefully (commands
// handed back in order) before it returns. A non-nil error means it could
// not go on; its lease is then given up for another replica to try.
type Work func(ctx context.Context, k int) error

// Config configures a Coordinator.
type Config struct {
	// Partitions is P.
	Partitions int
	// TTL is how long a lease lives without renewal: after a replica dies,
	// its partitions wait this long for another replica.
	TTL time.Duration
	// Instance names this replica; it must be unique among replicas.
	Instance string
	// Work runs one partition.
	Work       Work
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Coordinator holds this replica's share of the partitions.
//
// Every TTL/4 it writes its presence and renews its leases (Update with the
// last revision: a lease it lost cannot be renewed by mistake). It takes
// free partitions (create-only Create) while it holds fewer than
// ceil(P / live replicas), and gives up its highest ones (graceful stop,
// then Delete) when it holds more, so a replica that joins gets its share.
//
// A partition's worker starts only once its lease is held, and is stopped
// when the lease is lost: a renewal answered "changed", or no renewal
// succeeded for TTL/2 (a timer of its own, whatever the renewals are doing).
// The server expires the entry TTL after the last successful write, which
// it stamped after we sent it: the worker has at least TTL/2 to stop before
// another replica can take the partition. A
// replica that dies holds its lease until the TTL runs out; the next owner
// then starts with the dead owner's messages pending: the service rewinds
// the consumer so they come back at once, and the lanes' start-up gate
// waits for them before any lane starts. Handover therefore never lets two replicas consume one partition,
// and never lets a newer command of a channel overtake an older one.
type Coordinator struct {
	kv    jetstream.KeyValue
	cfg   Config
	log   *slog.Logger
	every time.Duration // renewal period, TTL/4
	fence time.Duration // a lease not renewed for this long is given up, TTL/2
	value []byte

	owned prometheus.Gauge
	kick  chan struct{}
	ended chan int // partition whose worker returned

	mu       sync.Mutex
	leases   map[int]*lease
	replicas map[string]time.Time // other replicas, by when last seen
	cooldown map[int]time.Time    // partitions whose worker failed here
}

type leaseState int

const (
	running   leaseState = iota
	releasing            // giving it up: delete once the worker stopped
	lost                 // not ours any more: just wait for the worker
)

type lease struct {
	k       int
	rev     uint64
	renewed time.Time   // when the last successful write was sent
	fence   *time.Timer // fires fence after renewed: the lease is lost
	state   leaseState
	cancel  context.CancelFunc
	done    chan struct{}
	err     error
}

// NewCoordinator returns a coordinator over the bucket kv.
func NewCoordinator(kv jetstream.KeyValue, cfg Config) (*Coordinator, error) {
	switch {
	case cfg.Partitions < 1 || cfg.Partitions > MaxCount:
		return nil, fmt.Errorf("partitions: %d is not between 1 and %d", cfg.Partitions, MaxCount)
	case cfg.TTL < time.Second:
		return nil, fmt.Errorf("partitions: lease TTL %s is under 1s", cfg.TTL)
	case cfg.Work == nil:
		return nil, errors.New("partitions: no Work")
	case cfg.Instance == "":
		return nil, errors.New("partitions: no Instance")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	value, _ := json.Marshal(struct {
		Owner string `json:"owner"`
	}{cfg.Instance})
	c := &Coordinator{
		kv: kv, cfg: cfg, log: cfg.Logger, value: value,
		every: cfg.TTL / 4, fence: cfg.TTL / 2,
		kick: make(chan struct{}, 1), ended: make(chan int, cfg.Partitions),
		leases: map[int]*lease{}, replicas: map[string]time.Time{}, cooldown: map[int]time.Time{},
		owned: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "crmslack", Subsystem: "delivery", Name: "partitions_owned",
			Help: "SLACK_OUT partitions this replica holds the lease of and consumes.",
		}),
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(c.owned); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("registering metrics: %w", err)
			}
		}
	}
	return c, nil
}

// Owned returns the partitions whose worker runs here, sorted.
func (c *Coordinator) Owned() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for k, l := range c.leases {
		if l.state == running {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func leaseKey(k int) string { return leasePrefix + strconv.Itoa(k) }

// replicaKey is this instance's presence key; KV keys allow letters,
// digits and "-/_=.".
func replicaKey(instance string) string {
	return replicaPrefix + strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '=':
			return r
		}
		return '_'
	}, instance)
}

// Run holds partitions until ctx ends, then stops every worker (renewing
// their leases meanwhile), releases the leases and the presence entry, and
// returns nil. It returns an error only when it cannot start.
func (c *Coordinator) Run(ctx context.Context) error {
	w, err := c.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watching bucket %s: %w", Bucket, err)
	}
	go c.watch(w)
	defer func() { _ = w.Stop() }()

	t := time.NewTicker(c.every)
	defer t.Stop()
	c.tick(ctx)
	for {
		select {
		case <-ctx.Done():
			c.shutdown(context.WithoutCancel(ctx))
			return nil
		case <-t.C:
			c.tick(ctx)
		case <-c.kick:
			c.acquire(ctx)
		case k := <-c.ended:
			c.workerEnded(ctx, k)
		}
	}
}

// watch follows the bucket: replicas arriving and leaving, and leases
// released, which are worth trying at once.
func (c *Coordinator) watch(w jetstream.KeyWatcher) {
	self := replicaKey(c.cfg.Instance)
	for e := range w.Updates() {
		if e == nil {
			continue // the initial values are in
		}
		key, put := e.Key(), e.Operation() == jetstream.KeyValuePut
		switch {
		case strings.HasPrefix(key, replicaPrefix) && key != self:
			c.mu.Lock()
			if put {
				c.replicas[key] = time.Now()
			} else {
				delete(c.replicas, key)
			}
			c.mu.Unlock()
			c.poke()
		case strings.HasPrefix(key, leasePrefix) && !put:
			c.poke()
		}
	}
}

func (c *Coordinator) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// tick writes presence, renews leases, sheds or takes partitions.
func (c *Coordinator) tick(ctx context.Context) {
	wctx, cancel := context.WithTimeout(ctx, c.every)
	defer cancel()
	if _, err := c.kv.Put(wctx, replicaKey(c.cfg.Instance), c.value); err != nil && ctx.Err() == nil {
		c.log.WarnContext(ctx, "writing replica presence failed", "err", err)
	}
	c.renew(ctx)
	c.rebalance(ctx)
	c.acquire(ctx)
}

// renew renews every lease still ours, and gives up those that cannot be.
func (c *Coordinator) renew(ctx context.Context) {
	c.mu.Lock()
	ls := make([]*lease, 0, len(c.leases))
	for _, l := range c.leases {
		if l.state != lost {
			ls = append(ls, l)
		}
	}
	c.mu.Unlock()
	for _, l := range ls {
		sent := time.Now()
		wctx, cancel := context.WithTimeout(ctx, c.every)
		rev, err := c.kv.Update(wctx, leaseKey(l.k), c.value, l.rev)
		cancel()
		c.mu.Lock()
		switch {
		case l.state == lost: // the fence fired meanwhile
		case err == nil:
			l.rev, l.renewed = rev, sent
			l.fence.Reset(time.Until(sent.Add(c.fence)))
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch), errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
			c.loseLocked(l, "the lease changed hands or expired: "+err.Error())
		default:
			c.log.WarnContext(ctx, "renewing a partition lease failed; retrying", "partition", l.k, "err", err)
		}
		c.mu.Unlock()
	}
}

func (c *Coordinator) loseLocked(l *lease, why string) {
	if l.state == lost {
		return
	}
	c.log.Warn("partition lease lost; stopping its worker", "partition", l.k, "reason", why)
	l.state = lost
	l.fence.Stop()
	l.cancel()
	c.owned.Set(float64(c.countLocked(running)))
}

func (c *Coordinator) countLocked(s leaseState) int {
	n := 0
	for _, l := range c.leases {
		if l.state == s {
			n++
		}
	}
	return n
}

// quotaLocked is this replica's fair share: ceil(P / live replicas).
func (c *Coordinator) quotaLocked() int {
	live := 1
	for key, seen := range c.replicas {
		if time.Since(seen) < c.cfg.TTL {
			live++
		} else {
			delete(c.replicas, key)
		}
	}
	return (c.cfg.Partitions + live - 1) / live
}

// rebalance gives up partitions beyond the quota, highest first.
func (c *Coordinator) rebalance(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	extra := c.countLocked(running) - c.quotaLocked()
	for k := c.cfg.Partitions - 1; k >= 0 && extra > 0; k-- {
		if l := c.leases[k]; l != nil && l.state == running {
			c.log.InfoContext(ctx, "giving up a partition for another replica", "partition", k)
			l.state = releasing
			l.cancel()
			extra--
		}
	}
	c.owned.Set(float64(c.countLocked(running)))
}

// acquire takes free partitions up to the quota, starting from an offset
// of this instance's own, so replicas starting together mostly try
// different partitions first.
func (c *Coordinator) acquire(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	c.mu.Lock()
	want := c.quotaLocked() - c.countLocked(running)
	c.mu.Unlock()
	if want <= 0 {
		return
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(c.cfg.Instance))
	first := int(h.Sum32() % uint32(c.cfg.Partitions))
	for i := range c.cfg.Partitions {
		if want == 0 {
			return
		}
		k := (first + i) % c.cfg.Partitions
		c.mu.Lock()
		_, held := c.leases[k]
		cooling := time.Now().Before(c.cooldown[k])
		c.mu.Unlock()
		if held || cooling {
			continue
		}
		sent := time.Now()
		wctx, cancel := context.WithTimeout(ctx, c.every)
		rev, err := c.kv.Create(wctx, leaseKey(k), c.value)
		cancel()
		switch {
		case err == nil:
			c.start(ctx, k, rev, sent)
			want--
		case errors.Is(err, jetstream.ErrKeyExists):
		default:
			if ctx.Err() == nil {
				c.log.WarnContext(ctx, "taking a partition lease failed", "partition", k, "err", err)
			}
			return
		}
	}
}

func (c *Coordinator) start(ctx context.Context, k int, rev uint64, sent time.Time) {
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l := &lease{k: k, rev: rev, renewed: sent, cancel: cancel, done: make(chan struct{})}
	c.mu.Lock()
	l.fence = time.AfterFunc(time.Until(sent.Add(c.fence)), func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.loseLocked(l, fmt.Sprintf("not renewed for %s", c.fence))
	})
	c.leases[k] = l
	c.owned.Set(float64(c.countLocked(running)))
	c.mu.Unlock()
	c.log.InfoContext(ctx, "partition taken", "partition", k)
	go func() {
		defer close(l.done)
		err := c.cfg.Work(wctx, k)
		c.mu.Lock()
		l.err = err
		c.mu.Unlock()
		c.ended <- k
	}()
}

// workerEnded cleans up after partition k's worker returned.
func (c *Coordinator) workerEnded(ctx context.Context, k int) {
	c.mu.Lock()
	l := c.leases[k]
	if l == nil {
		c.mu.Unlock()
		return
	}
	if l.state == running { // it stopped by itself: let another replica try
		c.log.ErrorContext(ctx, "partition worker stopped; giving up its lease", "partition", k, "err", l.err)
		c.cooldown[k] = time.Now().Add(c.cfg.TTL)
		l.state = releasing
	}
	release := l.state == releasing
	l.fence.Stop()
	delete(c.leases, k)
	c.owned.Set(float64(c.countLocked(running)))
	c.mu.Unlock()
	if release {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.every)
		if err := c.release(dctx, k, l.rev); err != nil {
			c.log.WarnContext(ctx, "releasing a partition lease failed; it will expire", "partition", k, "err", err)
		}
		cancel()
		c.log.InfoContext(ctx, "partition released", "partition", k)
	}
}

// release deletes partition k's lease while it is still ours. A renewal
// whose answer was lost (its ctx ended while it was on the wire) may have
// moved the revision past rev, so a mismatch is checked once against the
// owner stored, rather than leaving the lease to expire.
func (c *Coordinator) release(ctx context.Context, k int, rev uint64) error {
	err := c.kv.Delete(ctx, leaseKey(k), jetstream.LastRevision(rev))
	if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return err
	}
	e, gerr := c.kv.Get(ctx, leaseKey(k))
	switch {
	case errors.Is(gerr, jetstream.ErrKeyNotFound), errors.Is(gerr, jetstream.ErrKeyDeleted):
		return nil
	case gerr != nil:
		return errors.Join(err, gerr)
	case !bytes.Equal(e.Value(), c.value):
		return nil // another replica's already
	}
	return c.kv.Delete(ctx, leaseKey(k), jetstream.LastRevision(e.Revision()))
}

// shutdown stops every worker, renewing their leases until they have, then
// releases the leases and the presence entry.
func (c *Coordinator) shutdown(ctx context.Context) {
	c.mu.Lock()
	for _, l := range c.leases {
		if l.state == running {
			l.state = releasing
		}
		l.cancel()
	}
	c.owned.Set(0)
	c.mu.Unlock()
	t := time.NewTicker(c.every)
	defer t.Stop()
	for {
		c.mu.Lock()
		n := len(c.leases)
		c.mu.Unlock()
		if n == 0 {
			break
		}
		select {
		case k := <-c.ended:
			c.workerEnded(ctx, k)
		case <-t.C:
			c.renew(ctx)
		}
	}
	dctx, cancel := context.WithTimeout(ctx, c.every)
	defer cancel()
	if err := c.kv.Delete(dctx, replicaKey(c.cfg.Instance)); err != nil {
		c.log.Warn("removing replica presence failed; it will expire", "err", err)
	}
}
