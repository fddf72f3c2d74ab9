package partition

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crmslack/crmslack/libs/localnats"
	"github.com/crmslack/crmslack/libs/testkit"
)

const leaseTTL = time.Second

// tracker is the partitions' workers across replicas: it fails the test
// when two run one partition at once.
type tracker struct {
	t       *testing.T
	mu      sync.Mutex
	running map[int]string
	starts  map[string]int
	failK   map[int]int // partition → starts that fail at once
}

func newTracker(t *testing.T) *tracker {
	return &tracker{t: t, running: map[int]string{}, starts: map[string]int{}, failK: map[int]int{}}
}

func (tr *tracker) work(name string) Work {
	return func(ctx context.Context, k int) error {
		tr.mu.Lock()
		if other, ok := tr.running[k]; ok {
			tr.t.Errorf("partition %d started by %s while %s runs it", k, name, other)
		}
		tr.running[k] = name
		tr.starts[name]++
		fail := tr.failK[k] > 0
		if fail {
			tr.failK[k]--
		}
		tr.mu.Unlock()
		if !fail {
			<-ctx.Done()
			time.Sleep(20 * time.Millisecond) // a graceful stop takes a moment
		}
		tr.mu.Lock()
		delete(tr.running, k)
		tr.mu.Unlock()
		if fail {
			return errors.New("cannot consume")
		}
		return nil
	}
}

func (tr *tracker) count(name string) int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	n := 0
	for _, owner := range tr.running {
		if owner == name {
			n++
		}
	}
	return n
}

// replica is one coordinator on a connection of its own.
type replica struct {
	name string
	nc   *nats.Conn
	c    *Coordinator
	stop context.CancelFunc
	done chan error
}

func startReplica(t *testing.T, srv *localnats.Server, name string, tr *tracker) *replica {
	t.Helper()
	return startReplicaTTL(t, srv, name, tr, leaseTTL)
}

// startReplicaTTL starts a replica whose leases live ttl (the bucket's TTL
// is set by the first replica of a server).
func startReplicaTTL(t *testing.T, srv *localnats.Server, name string, tr *tracker, ttl time.Duration) *replica {
	t.Helper()
	nc, err := nats.Connect(srv.ClientURL(), testkit.NATSLogin(t), nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := EnsureBucket(testkit.Context(t), js, ttl, 1)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCoordinator(kv, Config{Partitions: 8, TTL: ttl, Instance: name, Work: tr.work(name), Logger: testkit.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{name: name, nc: nc, c: c, stop: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() { r.halt(t) })
	return r
}

// halt stops r and waits for its Run.
func (r *replica) halt(t *testing.T) {
	r.stop()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("%s: Run: %v", r.name, err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("%s: Run did not return", r.name)
	}
}

func owns(t *testing.T, r *replica, n int) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, func() bool { return len(r.c.Owned()) == n },
		"%s owns %d partitions (owns %v)", r.name, n, lazyOwned{r})
}

type lazyOwned struct{ r *replica }

func (l lazyOwned) String() string { return fmt.Sprint(l.r.c.Owned()) }

// TestLeasesSplitAndHandOver: a replica alone takes every partition; a
// second one gets half; a replica stopping hands its half back at once;
// no partition ever runs twice.
func TestLeasesSplitAndHandOver(t *testing.T) {
	t.Parallel()
	srv := testkit.NATS(t)
	tr := newTracker(t)
	// Leases long enough that a handover waiting for expiry cannot pass for
	// one by release, however loaded the machine.
	const ttl = 5 * time.Second
	a := startReplicaTTL(t, srv, "a", tr, ttl)
	owns(t, a, 8)
	b := startReplicaTTL(t, srv, "b", tr, ttl)
	owns(t, a, 4)
	owns(t, b, 4)
	if tr.count("a") != 4 || tr.count("b") != 4 {
		t.Errorf("workers: a %d, b %d", tr.count("a"), tr.count("b"))
	}
	start := time.Now()
	b.halt(t)
	owns(t, a, 8)
	// Released leases are taken when seen, not when they would expire.
	if took := time.Since(start); took >= ttl {
		t.Errorf("handover after a graceful stop took %s, as long as the lease TTL %s", took, ttl)
	}
}

// TestLeasesReplicaVanishes: a replica cut off from NATS stops its workers
// before its leases expire; the other takes its partitions after that.
func TestLeasesReplicaVanishes(t *testing.T) {
	t.Parallel()
	srv := testkit.NATS(t)
	tr := newTracker(t)
	a := startReplica(t, srv, "a", tr)
	owns(t, a, 8)
	b := startReplica(t, srv, "b", tr)
	owns(t, b, 4)
	owns(t, a, 4)
	cut := time.Now()
	b.nc.Close()
	owns(t, b, 0)
	if fenced := time.Since(cut); fenced > leaseTTL*3/4 {
		t.Errorf("b stopped its workers %s after losing NATS; the lease lives %s", fenced, leaseTTL)
	}
	owns(t, a, 8)
	if took := time.Since(cut); took < leaseTTL/2 {
		t.Errorf("a took b's partitions %s after b vanished, before b's leases can have expired", took)
	}
}

// TestLeasesFailingWorker: a partition whose worker fails is given up and
// taken again (here by the other replica, or later by the same).
func TestLeasesFailingWorker(t *testing.T) {
	t.Parallel()
	srv := testkit.NATS(t)
	tr := newTracker(t)
	tr.failK[5] = 1
	a := startReplica(t, srv, "a", tr)
	owns(t, a, 8)
	tr.mu.Lock()
	left := tr.failK[5]
	tr.mu.Unlock()
	if left != 0 {
		t.Error("partition 5's failing start was not tried")
	}
}
