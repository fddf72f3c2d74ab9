package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/natsauth"
	"github.com/crmslack/crmslack/libs/slackstandin"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/topology"
	slackv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/slack/v1"
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
	victims[natsauth.Delivery] = busiest(t, c.Replicas(natsauth.Delivery))
	leader := streamLeader(t, c, topology.StreamSlackOut)
	before := standin.posts(t)
	killedAt := time.Now()
	for _, r := range victims {
		r.Kill()
	}
	c.KillNATS(leader)
	t.Logf("killed %s, one replica of every other service and nats-%d (SLACK_OUT's leader) at %d of %d posts", victims[natsauth.Delivery].Name, leader+1, len(before), want)

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
	checkOrder(t, c, posts)

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
	t.Logf("figures: last post of each kind after the kill: %s", describeLast(lastOf, killedAt))
	gaps := longestGap(posts, killedAt)
	t.Logf("figures: %d events (%d posts) published in %s; all posted %s after the first publish: %.0f events/s end to end with the crash; %.0f posts/s before the kill",
		n, want, published.Sub(t0).Round(time.Millisecond), done.Sub(t0).Round(time.Millisecond), float64(n)/done.Sub(t0).Seconds(),
		float64(len(before))/killedAt.Sub(t0).Seconds())
	t.Logf("figures: takeover: the longest pause in posting after the kill was %s; the last post was %s after the kill", gaps.Round(time.Millisecond), last.Sub(killedAt).Round(time.Millisecond))
}

func describeLast(last map[string]time.Time, from time.Time) string {
	var parts []string
	for kind, at := range last {
		parts = append(parts, fmt.Sprintf("%q %s", kind, at.Sub(from).Round(time.Millisecond)))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// checkReplicated: the shared streams and buckets are on three nodes.
func checkReplicated(t *testing.T, c *Cluster) {
	t.Helper()
	js := observer(t, c, natsauth.Delivery)
	for _, s := range []string{topology.StreamCRM, topology.StreamSlackOut, "KV_org_access"} {
		st, err := js.Stream(testkit.Context(t), s)
		if err != nil {
			t.Fatalf("stream %s: %v", s, err)
		}
		info, err := st.Info(testkit.Context(t))
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Fatalf("stream %s: replicas %d, cluster %+v; want R3 on three nodes", s, info.Config.Replicas, info.Cluster)
		}
	}
}

// busiest is the delivery replica that has posted most.
func busiest(t *testing.T, rs []*Replica) *Replica {
	t.Helper()
	var best *Replica
	most := -1.0
	for _, r := range rs {
		if n := metricSum(t, r.Ops, "crmslack_delivery_commands_total"); n > most {
			best, most = r, n
		}
	}
	return best
}

// metricSum adds up a counter's series on a replica's /metrics.
func metricSum(t *testing.T, ops, name string) float64 {
	t.Helper()
	cl := http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Get("http://" + ops + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	sum := 0.0
	for _, line := range strings.Split(buf.String(), "\n") {
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			f := strings.Fields(line)
			if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
				sum += v
			}
		}
	}
	return sum
}

// streamLeader is the index of the node leading stream.
func streamLeader(t *testing.T, c *Cluster, stream string) int {
	t.Helper()
	js := observer(t, c, natsauth.Delivery)
	st, err := js.Stream(testkit.Context(t), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(testkit.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	i, err := strconv.Atoi(strings.TrimPrefix(info.Cluster.Leader, "nats-"))
	if err != nil {
		t.Fatalf("leader %q: %v", info.Cluster.Leader, err)
	}
	return i - 1
}

// observer is a JetStream connection as service user (the test reads
// SLACK_OUT as delivery, the only user that may).
func observer(t *testing.T, c *Cluster, user string) jetstream.JetStream {
	t.Helper()
	pw, err := c.PKI().NATSPassword(user)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(c.NATSURL(), nats.UserInfo(user, pw), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// checkExactlyOnce: every expected post once, where it belongs, and nothing
// else.
func checkExactlyOnce(t *testing.T, w workload, posts []slackstandin.Message) {
	t.Helper()
	count := map[string]int{}
	for _, m := range posts {
		mk := marker(m)
		if mk == "" {
			t.Errorf("an unexpected post in %s: %q", m.Channel, m.Text)
			continue
		}
		count[mk]++
		if where := w.posts[mk]; where != m.Channel && where != m.User {
			t.Errorf("%s posted in %s (user %q), want %s", mk, m.Channel, m.User, where)
		}
	}
	var missing, twice []string
	for mk := range w.posts {
		switch count[mk] {
		case 0:
			missing = append(missing, mk)
		case 1:
		default:
			twice = append(twice, fmt.Sprintf("%s ×%d", mk, count[mk]))
		}
	}
	sort.Strings(missing)
	sort.Strings(twice)
	if len(missing) > 0 || len(twice) > 0 {
		t.Fatalf("%d posts missing %v, %d posted more than once %v", len(missing), head(missing), len(twice), head(twice))
	}
}

func head(s []string) []string { return s[:min(len(s), 20)] }

// checkOrder: in each conversation, the posts of each target are in the
// order of their commands on SLACK_OUT (delivery's promise, across replicas
// and crashes).
func checkOrder(t *testing.T, c *Cluster, posts []slackstandin.Message) {
	t.Helper()
	js := observer(t, c, natsauth.Delivery)
	ctx := testkit.Context(t)
	st, err := js.Stream(ctx, topology.StreamSlackOut)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seq := map[string]uint64{}  // marker → its first command's stream sequence
	lane := map[string]string{} // marker → its command's target, as addressed
	for n := info.State.FirstSeq; n <= info.State.LastSeq; n++ {
		var msg *jetstream.RawStreamMsg
		testkit.Eventually(t, 30*time.Second, func() bool {
			msg, err = st.GetMsg(ctx, n)
			return err == nil
		}, "SLACK_OUT message %d: %v", n, err)
		var pm slackv1.PostMessage
		if msg.Header.Get(bus.HeaderType) != string(proto.MessageName(&pm)) {
			continue
		}
		if err := proto.Unmarshal(msg.Data, &pm); err != nil {
			t.Fatal(err)
		}
		if mk := marker(slackstandin.Message{Text: pm.GetText(), Blocks: pm.GetBlocksJson()}); mk != "" {
			if _, ok := seq[mk]; !ok {
				seq[mk], lane[mk] = n, pm.GetTarget().String()
			}
		}
	}
	// Delivery orders by the target as the command names it: a DM reached
	// by user id (signals) and by email (reminders) are two lanes.
	byChannel := map[string][]uint64{}
	for _, m := range posts {
		key := m.Channel + " " + lane[marker(m)]
		byChannel[key] = append(byChannel[key], seq[marker(m)])
	}
	for ch, seqs := range byChannel {
		if !slices.IsSorted(seqs) {
			for i := 1; i < len(seqs); i++ {
				if seqs[i] < seqs[i-1] {
					t.Errorf("%s: post %d is command %d on SLACK_OUT, after command %d: out of order", ch, i, seqs[i], seqs[i-1])
					break
				}
			}
		}
	}
}

// longestGap is the longest time without a post from at to the last post.
func longestGap(posts []slackstandin.Message, at time.Time) time.Duration {
	times := []time.Time{at}
	for _, m := range posts {
		if m.Time.After(at) {
			times = append(times, m.Time)
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	var gap time.Duration
	for i := 1; i < len(times); i++ {
		gap = max(gap, times[i].Sub(times[i-1]))
	}
	return gap
}

// standinClient reads what the stand-in recorded, over its HTTP API: it
// runs as a process of its own.
type standinClient struct {
	url string
	mu  sync.Mutex
}

// waitPosts polls (each poll reads every post, so not at testkit's pace)
// until n posts are in, and returns them.
func (s *standinClient) waitPosts(t *testing.T, timeout time.Duration, n int) []slackstandin.Message {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		posts := s.posts(t)
		if len(posts) >= n {
			return posts
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d posts after %s", len(posts), n, timeout)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// posts are the messages the app posted in Acme (not ephemeral, not
// response_url answers).
func (s *standinClient) posts(t *testing.T) []slackstandin.Message {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	cl := http.Client{Timeout: 30 * time.Second}
	resp, err := cl.Get(s.url + "/_standin/messages?kind=message&team=" + acme)
	if err != nil {
		t.Logf("stand-in: %v", err)
		return nil
	}
	defer resp.Body.Close()
	var page struct {
		Messages []slackstandin.Message `json:"messages"`
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil || json.Unmarshal(buf.Bytes(), &page) != nil {
		t.Fatalf("stand-in messages: HTTP %d %v: %.200s", resp.StatusCode, err, buf.String())
	}
	return page.Messages
}
