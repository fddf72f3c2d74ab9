package lanes

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/crmslack/crmslack/libs/testkit"
)

// setup returns a stream "T" on "t.>" and a durable consumer on it.
func setup(t *testing.T) (jetstream.JetStream, jetstream.Consumer) {
	t.Helper()
	js := testkit.JetStream(t, testkit.NATSConn(t, testkit.NATS(t)))
	ctx := testkit.Context(t)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatal(err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, "T", jetstream.ConsumerConfig{
		Durable: "d", AckPolicy: jetstream.AckExplicitPolicy, AckWait: 2 * time.Second, MaxAckPending: 1000,
	})
	if err != nil {
		t.Fatal(err)
	}
	return js, cons
}

func publish(t *testing.T, js jetstream.JetStream, lane string, n int) {
	t.Helper()
	for i := range n {
		if _, err := js.Publish(testkit.Context(t), "t."+lane, []byte(fmt.Sprintf("%s %d", lane, i))); err != nil {
			t.Fatal(err)
		}
	}
}

// recorder records the payloads each lane processed, in order.
type recorder struct {
	mu   sync.Mutex
	seen map[string][]string
	done map[string]time.Time
}

func newRecorder() *recorder {
	return &recorder{seen: map[string][]string{}, done: map[string]time.Time{}}
}

func (r *recorder) add(lane, payload string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen[lane] = append(r.seen[lane], payload)
	r.done[lane] = time.Now()
}

func (r *recorder) count(lane string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen[lane])
}

func decode(msg jetstream.Msg) (string, any, error) {
	lane := strings.TrimPrefix(msg.Subject(), "t.")
	if lane == "bad" {
		return "", nil, fmt.Errorf("undecodable")
	}
	return lane, string(msg.Data()), nil
}

func run(t *testing.T, d *Dispatcher, cons jetstream.Consumer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, cons) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func want(lane string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s %d", lane, i)
	}
	return out
}

func TestLanesKeepOrderAndDoNotWaitForEachOther(t *testing.T) {
	t.Parallel()
	js, cons := setup(t)
	rec := newRecorder()
	var rejected []string
	var mu sync.Mutex
	d, err := New(Config{
		AckWait: 2 * time.Second,
		Decode:  decode,
		Process: func(ctx context.Context, it *Item) bool {
			if it.Lane == "slow" {
				time.Sleep(20 * time.Millisecond)
			}
			rec.add(it.Lane, it.Payload.(string))
			_ = it.Msg().Ack()
			return true
		},
		Reject: func(_ context.Context, msg jetstream.Msg, err error) {
			mu.Lock()
			rejected = append(rejected, msg.Subject())
			mu.Unlock()
			_ = msg.Term()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, js, "slow", 30)
	publish(t, js, "bad", 1)
	for i := range 5 {
		publish(t, js, fmt.Sprintf("fast%d", i), 30)
	}
	run(t, d, cons)
	testkit.Eventually(t, 10*time.Second, func() bool { return rec.count("slow") == 30 }, "slow lane done")
	testkit.Eventually(t, 10*time.Second, func() bool { return d.Held() == 0 }, "nothing held")
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for lane, got := range rec.seen {
		if !slices.Equal(got, want(lane, 30)) {
			t.Errorf("lane %s out of order: %q", lane, got)
		}
		if lane != "slow" && rec.done[lane].After(rec.done["slow"]) {
			t.Errorf("lane %s finished after the slow lane, published before it", lane)
		}
	}
	if len(rejected) != 1 {
		t.Errorf("rejected %v, want the one undecodable message", rejected)
	}
}

func TestStopHandsBackInOrder(t *testing.T) {
	t.Parallel()
	js, _ := setup(t)
	// A long AckWait: the redelivery within the wait below can only be the
	// stop handing the messages back, not their AckWait running out.
	const ackWait = time.Minute
	cons, err := js.CreateOrUpdateConsumer(testkit.Context(t), "T", jetstream.ConsumerConfig{
		Durable: "d", AckPolicy: jetstream.AckExplicitPolicy, AckWait: ackWait, MaxAckPending: 1000,
	})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{}, 1)
	first, err := New(Config{
		AckWait: ackWait,
		Decode:  decode,
		Process: func(ctx context.Context, it *Item) bool {
			select {
			case started <- struct{}{}:
			default:
			}
			<-ctx.Done() // stuck in a rate-limit wait until the stop
			return false
		},
		Reject: func(context.Context, jetstream.Msg, error) {},
	})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, js, "a", 10)
	stop := run(t, first, cons)
	<-started
	testkit.Eventually(t, 5*time.Second, func() bool { return first.Held() == 10 }, "all ten held")
	stop()

	rec := newRecorder()
	second, err := New(Config{
		AckWait: ackWait,
		Decode:  decode,
		Process: func(ctx context.Context, it *Item) bool {
			rec.add(it.Lane, it.Payload.(string))
			_ = it.Msg().Ack()
			return true
		},
		Reject: func(context.Context, jetstream.Msg, error) {},
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, second, cons)
	testkit.Eventually(t, 20*time.Second, func() bool { return rec.count("a") == 10 }, "all ten handed back by the stop (their AckWait is a minute)")
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if got := rec.seen["a"]; !slices.Equal(got, want("a", 10)) {
		t.Errorf("after the stop: %q", got)
	}
}

func TestPanicDoesNotStopTheLane(t *testing.T) {
	t.Parallel()
	js, cons := setup(t)
	rec := newRecorder()
	var once sync.Once
	d, err := New(Config{
		AckWait: 2 * time.Second,
		Decode:  decode,
		Process: func(ctx context.Context, it *Item) bool {
			if it.Payload.(string) == "a 3" {
				once.Do(func() { panic("boom") })
			}
			rec.add(it.Lane, it.Payload.(string))
			_ = it.Msg().Ack()
			return true
		},
		Reject: func(context.Context, jetstream.Msg, error) {},
	})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, js, "a", 6)
	run(t, d, cons)
	// The panicking message comes back after its delay and goes through.
	testkit.Eventually(t, 10*time.Second, func() bool { return rec.count("a") == 6 }, "every message processed despite the panic")
}

// TestCrashedHoldersComeFirst: a process dies holding a lane's messages
// (its connection is gone: no ack, no nak, no heartbeat). Newer messages of
// the lane published meanwhile must not overtake them: lanes wait until the
// dead process's messages are redelivered.
func TestCrashedHoldersComeFirst(t *testing.T) {
	t.Parallel()
	srv := testkit.NATS(t)
	js := testkit.JetStream(t, testkit.NATSConn(t, srv))
	ctx := testkit.Context(t)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}}); err != nil {
		t.Fatal(err)
	}
	consCfg := jetstream.ConsumerConfig{Durable: "d", AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Second, MaxAckPending: 1000}
	publish(t, js, "a", 10)

	// The doomed process, on its own connection.
	nc1 := testkit.NATSConn(t, srv)
	js1 := testkit.JetStream(t, nc1)
	cons1, err := js1.CreateOrUpdateConsumer(ctx, "T", consCfg)
	if err != nil {
		t.Fatal(err)
	}
	first, err := New(Config{
		AckWait: time.Hour, // no heartbeat before the crash
		Decode:  decode,
		Process: func(ctx context.Context, it *Item) bool { <-ctx.Done(); return false },
		Reject:  func(context.Context, jetstream.Msg, error) {},
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, first, cons1)
	testkit.Eventually(t, 5*time.Second, func() bool { return first.Held() == 10 }, "all ten held")
	nc1.Close() // the crash
	stop()

	// Five newer messages of the same lane arrive while it is down.
	for i := 10; i < 15; i++ {
		if _, err := js.Publish(ctx, "t.a", []byte(fmt.Sprintf("a %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	cons2, err := js.CreateOrUpdateConsumer(ctx, "T", consCfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	second, err := New(Config{
		AckWait: time.Second,
		Decode:  decode,
		Process: func(ctx context.Context, it *Item) bool {
			rec.add(it.Lane, it.Payload.(string))
			_ = it.Msg().Ack()
			return true
		},
		Reject: func(context.Context, jetstream.Msg, error) {},
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, second, cons2)
	testkit.Eventually(t, 10*time.Second, func() bool { return rec.count("a") == 15 }, "all fifteen processed")
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if got := rec.seen["a"]; !slices.Equal(got, want("a", 15)) {
		t.Errorf("after the crash: %q", got)
	}
}

// TestHeldMessagesKeptAliveOnlyWhenDue: messages held three times their
// AckWait behind a slow command are not redelivered, and each gets a
// progress ack only when half its AckWait has run, not at every beat.
func TestHeldMessagesKeptAliveOnlyWhenDue(t *testing.T) {
	t.Parallel()
	js, cons := setup(t) // AckWait 2s
	release := make(chan struct{})
	var processed sync.Map
	d, err := New(Config{
		AckWait: 2 * time.Second,
		Decode:  decode,
		Process: func(ctx context.Context, it *Item) bool {
			if it.Payload.(string) == "held 0" {
				<-release
			}
			if _, dup := processed.LoadOrStore(it.Payload, true); dup {
				t.Errorf("%s processed twice", it.Payload)
			}
			_ = it.Msg().Ack()
			return true
		},
		Reject: func(context.Context, jetstream.Msg, error) {},
	})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, js, "held", 50)
	run(t, d, cons)
	testkit.Eventually(t, 5*time.Second, func() bool { return d.Held() == 50 }, "not all held")
	// Count the progress acks the server receives.
	sub, err := js.Conn().SubscribeSync("$JS.ACK.T.d.>")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(6 * time.Second) // three AckWaits, eighteen beats
	close(release)
	testkit.Eventually(t, 5*time.Second, func() bool { return d.Held() == 0 }, "held messages not settled")
	info, err := cons.Info(testkit.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	if info.NumRedelivered != 0 {
		t.Errorf("%d messages redelivered while held", info.NumRedelivered)
	}
	n, _, _ := sub.Pending()
	// Every 1 to 1.33s (half of AckWait, to the next beat) for 6s: at most
	// 6 per message plus its ack; every third of AckWait would be 9 and 1.
	if per := float64(n) / 50; per > 8 {
		t.Errorf("%.1f acks per held message in three AckWaits, want a keep-alive only when half of AckWait has run", per)
	}
}

// TestKeptItemsStayHeldUntilReleased: an item Process settles
// asynchronously (Keep) is kept alive and not handed to a lane again while
// its acknowledgement waits, for longer than its AckWait.
func TestKeptItemsStayHeldUntilReleased(t *testing.T) {
	t.Parallel()
	js, cons := setup(t) // AckWait 2s
	var processed sync.Map
	var mu sync.Mutex
	var later []func()
	d, err := New(Config{
		AckWait: 2 * time.Second,
		Decode:  decode,
		Process: func(ctx context.Context, it *Item) bool {
			if _, dup := processed.LoadOrStore(it.Payload, true); dup {
				t.Errorf("%s processed twice", it.Payload)
			}
			release := it.Keep()
			mu.Lock()
			later = append(later, func() { _ = it.Msg().Ack(); release() })
			mu.Unlock()
			return true
		},
		Reject: func(context.Context, jetstream.Msg, error) {},
	})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, js, "kept", 20)
	run(t, d, cons)
	testkit.Eventually(t, 5*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(later) == 20 }, "not all processed")
	if d.Held() != 20 {
		t.Errorf("%d held, want the 20 kept items", d.Held())
	}
	time.Sleep(5 * time.Second) // two and a half AckWaits
	mu.Lock()
	for _, f := range later {
		f()
	}
	mu.Unlock()
	testkit.Eventually(t, 5*time.Second, func() bool { return d.Held() == 0 }, "released items still held")
	// The acks are asynchronous: the server counts them in its own time.
	var info *jetstream.ConsumerInfo
	testkit.Eventually(t, 5*time.Second, func() bool {
		info, err = cons.Info(testkit.Context(t))
		return err == nil && (info.NumAckPending == 0 || info.NumRedelivered != 0)
	}, "acks not counted by the server")
	if info.NumRedelivered != 0 || info.NumAckPending != 0 {
		t.Errorf("redelivered %d, ack pending %d: kept items must stay alive until acknowledged", info.NumRedelivered, info.NumAckPending)
	}
}

// A backlog the lanes are working through is pulled a window at a time,
// not whole: the server's pending set and the held messages stay bounded by
// the window, however deep the backlog.
func TestPullsNoMoreThanTheWindow(t *testing.T) {
	t.Parallel()
	js, cons := setup(t)
	const window, prefetch = 50, 10
	release := make(chan struct{})
	d, err := New(Config{
		AckWait: 2 * time.Second, Prefetch: prefetch, Window: window, Fresh: time.Hour,
		Decode: decode,
		Process: func(ctx context.Context, it *Item) bool {
			select {
			case <-release:
			case <-ctx.Done():
				return false
			}
			_ = it.Msg().Ack()
			return true
		},
		Reject: func(context.Context, jetstream.Msg, error) {},
	})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, js, "a", 500)
	run(t, d, cons)
	testkit.Eventually(t, 10*time.Second, func() bool { return d.Held() >= window }, "the window taken")
	// One started and window waiting; a fetch asks for no more than
	// there is room for (the server's count allows one pull more).
	if h := d.Held(); h > window+1 {
		t.Fatalf("%d held, want at most %d", h, window+1)
	}
	info, err := cons.Info(testkit.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	if p := info.NumAckPending; p > window+1+prefetch {
		t.Fatalf("%d pending on the server, want at most %d", p, window+1+prefetch)
	}
	close(release)
	testkit.Eventually(t, 20*time.Second, func() bool { return d.Held() == 0 }, "backlog done")
}

// A lane that cannot go on does not hold up the lanes behind its backlog:
// its messages stop counting against the window once older than Fresh, and
// the dispatcher pulls through to the next lane.
func TestStalledLaneBacklogIsPulledThrough(t *testing.T) {
	t.Parallel()
	js, cons := setup(t)
	rec := newRecorder()
	stuck := make(chan struct{})
	t.Cleanup(func() { close(stuck) })
	d, err := New(Config{
		AckWait: 2 * time.Second, Prefetch: 10, Window: 20, Fresh: 50 * time.Millisecond,
		Decode: decode,
		Process: func(ctx context.Context, it *Item) bool {
			if it.Lane == "stuck" {
				select {
				case <-stuck:
				case <-ctx.Done():
				}
				return false
			}
			rec.add(it.Lane, it.Payload.(string))
			_ = it.Msg().Ack()
			return true
		},
		Reject: func(context.Context, jetstream.Msg, error) {},
	})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, js, "stuck", 300)
	publish(t, js, "next", 1)
	run(t, d, cons)
	testkit.Eventually(t, 20*time.Second, func() bool { return rec.count("next") == 1 }, "the lane behind the stalled backlog carried out")
}

// fetchCounter counts the fetches made through it.
type fetchCounter struct {
	jetstream.Consumer
	fetches atomic.Int64
}

func (c *fetchCounter) Fetch(n int, opts ...jetstream.FetchOpt) (jetstream.MessageBatch, error) {
	c.fetches.Add(1)
	return c.Consumer.Fetch(n, opts...)
}

// TestBacklogFetchedInBatches: under a backlog a place frees as each command
// starts; the dispatcher gathers them into fetches of many commands instead
// of one fetch (a pull request, its timers, its reply subscription) per
// command.
func TestBacklogFetchedInBatches(t *testing.T) {
	t.Parallel()
	js, cons := setup(t)
	const n, window = 1000, 64
	var processed atomic.Int64
	d, err := New(Config{
		AckWait: 2 * time.Second, Prefetch: window, Window: window, Fresh: time.Hour,
		Decode: decode,
		Process: func(ctx context.Context, it *Item) bool {
			time.Sleep(time.Millisecond) // one lane: places free a millisecond apart
			_ = it.Msg().Ack()
			processed.Add(1)
			return true
		},
		Reject: func(context.Context, jetstream.Msg, error) {},
	})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, js, "a", n)
	counted := &fetchCounter{Consumer: cons}
	run(t, d, counted)
	testkit.Eventually(t, 30*time.Second, func() bool { return processed.Load() == n }, "the backlog handled")
	// At least a quarter of the window, or what 20 ms freed (~16 here), per
	// fetch: about 60 fetches; one per command would be about 1,000.
	if f := counted.fetches.Load(); f > n/8 {
		t.Fatalf("%d fetches for %d commands, want at most %d", f, n, n/8)
	}
}
