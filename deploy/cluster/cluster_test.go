package cluster

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/identity"

	"github.com/crmslack/crmslack/libs/topology"
)

func nowPB() *timestamppb.Timestamp { return timestamppb.Now() }

// longContext lasts as long as the test may (testkit.Context is for one
// call): the build, the start and the whole run use it.
func longContext(t *testing.T) context.Context {
	deadline, ok := t.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Hour)
	}
	ctx, cancel := context.WithDeadline(t.Context(), deadline.Add(-10*time.Second))
	t.Cleanup(cancel)
	return ctx
}

// defaultEvents is the short form `make test` runs; CLUSTER_EVENTS=10000
// (make cluster-test) is the full one.
const defaultEvents = 1000

// TestClusterExactlyOnceThroughCrashes drives the distributed mode: every
// part its own process, security on. It installs a workspace, saves a
// workflow action per channel, and publishes CRM events as the CRM
// (triggers to 100 channels, missed calls to 50 people, records shared to
// channels, record updates),
// posted at Slack's pace per channel; when 40% of the posts
// are in, it SIGKILLs one replica of every service and one NATS node. Every
// post must arrive exactly once, in each channel in the order of its
// commands on SLACK_OUT; the survivors' takeover time and the throughput
// are logged.
func TestClusterExactlyOnceThroughCrashes(t *testing.T) {
	n := defaultEvents
	if v := os.Getenv("CLUSTER_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 10 {
			t.Fatalf("CLUSTER_EVENTS=%q: want a number of at least 10", v)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	built := time.Now()
	if err := Build(longContext(t), root, bin); err != nil {
		t.Fatal(err)
	}
	t.Logf("built the binaries in %s", time.Since(built).Round(time.Second))

	// The processes' output: shown when the test fails, kept at CLUSTER_LOG.
	logPath := filepath.Join(t.TempDir(), "cluster.log")
	if p := os.Getenv("CLUSTER_LOG"); p != "" {
		logPath = p
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 60000 {
				b = b[len(b)-60000:]
			}
			t.Logf("the cluster's last output:\n%s", b)
		}
	})
	started := time.Now()
	c, err := Start(longContext(t), Options{
		Dir: t.TempDir(), Bin: bin, CRMOrgs: []string{org}, Out: logFile,
		// Delivery keeps Slack's pace per channel (1/s, bursts of 3) on its
		// shipped defaults; the stand-in's per-workspace tiers are off, as in
		// the benches: they would meter the test's one workspace, where a
		// real deployment spreads over many.
		Env:        map[string]string{"LOG_LEVEL": "warn"},
		StandinEnv: map[string]string{"SLACK_STANDIN_RATE_LIMITS": "false", "SLACK_STANDIN_SEED": loadSeed(t)},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("stopping the cluster: %v", err)
		}
	})
	t.Logf("cluster up in %s", time.Since(started).Round(time.Second))
	checkReplicated(t, c)

	install(t, c)
	b := crm(t, c)
	actions(t, c, b)
	enableReminders(t, c)

	w := newWorkload(n)
	standin := standinClient{url: c.StandinURL()}
	ctx := longContext(t)
	pubErr := make(chan error, 1)
	t0 := time.Now()
	go func() {
		const batch = 100
		for i := 0; i < len(w.events); i += batch {
			evs := w.events[i:min(i+batch, len(w.events))]
			dueSoon(evs)
			if err := publish(ctx, b, evs); err != nil {
				pubErr <- err
				return
			}
		}
		pubErr <- nil
	}()

	// Mid-stream: one replica of every service and a NATS node die.
	want := len(w.posts)
	standin.waitPosts(t, 5*time.Minute, want*2/5)
	// The victims that hurt most: the delivery replica posting Acme's
	// commands (one team's are one partition, leased by one replica) and
	// the node leading SLACK_OUT.
	victims := map[string]*Replica{}
	for _, s := range services {
		victims[s.name] = c.Replicas(s.name)[0]
	}
	victims[identity.Delivery] = busiest(t, c.Replicas(identity.Delivery))
	leader := streamLeader(t, c, topology.StreamSlackOut)
	before := standin.posts(t)
	killedAt := time.Now()
	for _, r := range victims {
		r.Kill()
	}
	c.KillNATS(leader)
	t.Logf("killed %s, one replica of every other service and nats-%d (SLACK_OUT's leader) at %d of %d posts", victims[identity.Delivery].Name, leader+1, len(before), want)

	if err := <-pubErr; err != nil {
		t.Fatal(err)
	}
	published := time.Now()
	posts := standin.waitPosts(t, 10*time.Minute, want)
	done := time.Now()

	// Anything posted twice arrives soon after: wait for the count to stay.
	stable := time.Now()
	for time.Since(stable) < 10*time.Second {
		time.Sleep(time.Second)
		if p := standin.posts(t); len(p) != len(posts) {
			posts, stable = p, time.Now()
		}
	}
	checkExactlyOnce(t, w, posts)
	stored := checkOrder(t, c, posts)

	// Takeover: the work the killed replicas held is done by the survivors;
	// the last post of what was published before the kill says when.
	var last time.Time
	seen := map[string]bool{}
	for _, m := range before {
		seen[marker(m)] = true
	}
	lastOf := map[string]time.Time{}
	for _, m := range posts {
		if !seen[marker(m)] && m.Time.After(last) {
			last = m.Time
		}
		kind := strings.SplitN(marker(m), " ", 2)[0]
		if m.Time.After(lastOf[kind]) {
			lastOf[kind] = m.Time
		}
	}
	waits := takeover(posts, killedAt, seen)
	t.Logf("figures: takeover, the longest a conversation waited from the kill for its next post, by kind: %s", describeWaits(waits))
	t.Logf("figures: last post of each kind after the kill: %s", describeLast(lastOf, killedAt))
	producer, delivery := stages(posts, killedAt, stored)
	t.Logf("figures: of the posts after the kill, the latest command stored on SLACK_OUT, by kind: %s; the longest from its command (or the kill) to its post: %s",
		describeWaits(producer), describeWaits(delivery))
	gaps := longestGap(posts, killedAt)
	t.Logf("figures: %d events (%d posts) published in %s; all posted %s after the first publish: %.0f events/s end to end with the crash; %.0f posts/s before the kill",
		n, want, published.Sub(t0).Round(time.Millisecond), done.Sub(t0).Round(time.Millisecond), float64(n)/done.Sub(t0).Seconds(),
		float64(len(before))/killedAt.Sub(t0).Seconds())
	t.Logf("figures: takeover: the longest pause in posting after the kill was %s; the last post was %s after the kill", gaps.Round(time.Millisecond), last.Sub(killedAt).Round(time.Millisecond))

	// The survivors take the work within seconds: a killed producer's
	// messages come back after their AckWait (10 s), a killed delivery's
	// partitions are rewound as they are taken over, and nothing waits for
	// a history lookup but the posts in flight. Measured per conversation
	// (its wait for its next post), so a channel's own backlog at Slack's
	// pace does not count.
	for kind, w := range waits {
		if w > takeoverLimit {
			t.Errorf("a %q conversation waited %s after the kill for its next post; want at most %s", kind, w.Round(time.Millisecond), takeoverLimit)
		}
	}
}

// takeoverLimit is the longest the test lets any part of the work wait for
// the survivors after the kill.
const takeoverLimit = 30 * time.Second
