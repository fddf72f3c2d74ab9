package delivery_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/libs/identity"
	"github.com/crmslack/crmslack/libs/slackstandin"
	"github.com/crmslack/crmslack/libs/testkit"

	"github.com/crmslack/crmslack/services/delivery"
	"github.com/crmslack/crmslack/services/delivery/internal/partition"
)

// benchSizes are the run sizes every throughput bench reports at, so that
// growth with the size of the run shows.
var benchSizes = []int{20_000, 100_000}

// BenchmarkSustainedPosts measures throughput with no rate limit: n posts
// over 50 channels of the four workspaces, published at once; posts/s from
// the first publish to the last post in Slack. The commands come from one
// org per partition, so that replicas=2 splits the work in two halves (one
// replica per four partitions, in this one process). Each run also reports
// bytes and allocations per post (the whole process: stand-in, NATS and
// FerretDB included, and egress-B/post, egress-allocs/post: the share of
// them that the egress process's own code made, see allocs_test.go), stream writes per post (every JetStream stream's
// appends: ledger, outcomes, ...) and Slack calls per post.
func BenchmarkSustainedPosts(b *testing.B) {
	for _, replicas := range []int{1, 2} {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("replicas=%d/posts=%d", replicas, n), func(b *testing.B) {
				e := newEnv(b, envOptions{bench: true})
				w := newWorkload(b, e)
				var rs []*running
				for range replicas {
					rs = append(rs, e.start(benchConfig(e)))
				}
				for _, r := range rs {
					waitOwned(b, r, testPartitions/replicas)
				}
				w.warm(b)
				for range b.N {
					cmds := w.commands(n, "B")
					m := startMeasure(b, e)
					start := time.Now()
					e.publish(cmds...)
					m.waitPosted(b, n)
					el := time.Since(start)
					b.StopTimer()
					m.report(b, n)
					b.ReportMetric(float64(n)/el.Seconds(), "posts/s")
					b.StartTimer()
				}
			})
		}
	}
}

// BenchmarkPostLatency offers posts at a steady rate over the workload's 50
// channels and reports the enqueue → accepted latency: from the command's
// publish to Slack accepting the message. It also reports the process's
// resident memory at the steady rate and after the backlog drained.
func BenchmarkPostLatency(b *testing.B) {
	for _, rate := range []int{2_500, 5_000} {
		n := 10 * rate // ten seconds of posts
		b.Run(fmt.Sprintf("rate=%d/posts=%d", rate, n), func(b *testing.B) { postLatency(b, rate, n, false) })
	}
}

// postLatency offers n posts at rate to delivery, in the bench's process or
// (ownProcess) in a process of its own, whose usage it then reports instead
// of the bench process's (see BenchmarkSustainedPostsOwnProcess).
func postLatency(b *testing.B, rate, n int, ownProcess bool) {
	e := newEnv(b, envOptions{bench: true})
	w := newWorkload(b, e)
	var c *child
	if ownProcess {
		c = e.startUsageChild(b)
	} else {
		e.start(benchConfig(e))
	}
	w.warm(b)
	for range b.N {
		prefix := "P" + strconv.Itoa(rate) + " "
		cmds := w.commands(n, strings.TrimSpace(prefix))
		m := startMeasure(b, e)
		var u0 usage
		rss := &rssSampler{}
		if c != nil {
			u0 = c.usage(b)
			rss = c.sampleRSS()
		} else {
			rss.start()
		}
		sent := make([]time.Time, n)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		published := time.Now()
		// Publish in slices of 5 ms, each asynchronously, so the
		// offered rate holds however long one publish takes. Each
		// tick publishes what is due by then (rate × elapsed, not a
		// whole number per slice: 12.5 at 2,500/s), and a tick missed
		// while a publish ran is caught up by the next.
		const slice = 5 * time.Millisecond
		tick := time.NewTicker(slice)
		for i := 0; i < n; {
			<-tick.C
			due := min(int(time.Since(published)*time.Duration(rate)/time.Second), n)
			if due <= i {
				continue
			}
			items := make([]bus.Published, 0, due-i)
			now := time.Now()
			for j := i; j < due; j++ {
				sent[j] = now
				items = append(items, bus.Published{Subject: subjectOf(cmds[j]), Event: cmds[j]})
			}
			if err := e.bus.PublishBatch(ctx, items); err != nil {
				b.Fatal(err)
			}
			i = due
		}
		tick.Stop()
		// What was offered: below the rate when publishing falls behind.
		offered := float64(n) / time.Since(published).Seconds()
		m.waitPosted(b, n)
		steady := rss.stop()
		b.StopTimer()
		var drained float64
		if c != nil {
			m.settled(b)
			u1 := c.usage(b)
			u1.report(b, u0, n)
			drained = float64(u1.RSS) / (1 << 20)
		} else {
			m.report(b, n)
			drained = rssMB()
		}
		lat := make([]time.Duration, 0, n)
		for _, msg := range e.slack.Messages(slackstandin.MessageFilter{Kind: slackstandin.KindMessage}) {
			idx, ok := strings.CutPrefix(msg.Text, prefix)
			if !ok {
				continue
			}
			i, _ := strconv.Atoi(idx)
			lat = append(lat, msg.Time.Sub(sent[i]))
		}
		slices.Sort(lat)
		b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
		b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
		b.ReportMetric(offered, "offered/s")
		b.ReportMetric(steady, "rss-steady-MB")
		b.ReportMetric(drained, "rss-drained-MB")
		b.StartTimer()
	}
}

// benchConfig is the shipped configuration (the environment's defaults)
// pointed at env, with one change: Slack's per-channel pace (1/s) is lifted,
// as the stand-in's is, since 50 channels at 1/s could not carry more than
// 50 posts/s.
func benchConfig(e *env) delivery.Config {
	l := envconfig.FromMap(map[string]string{
		"NATS_URL":                e.nats.ClientURL(),
		"MONGODB_URI":             e.mongo.URI(),
		"DELIVERY_GRPC_ADDR":      "127.0.0.1:0",
		"DELIVERY_OPS_ADDR":       "127.0.0.1:0",
		"TEAMS_ADDR":              e.teams.addr,
		"SLACK_API_URL":           e.url + "/api/",
		"DELIVERY_CHANNEL_RATE":   "1000000",
		"DELIVERY_CHANNEL_BURST":  "10000",
		"DELIVERY_TIER_OVERRIDES": "",
	})
	cfg := delivery.ConfigFromEnv(l)
	if err := l.Err(); err != nil {
		e.t.Fatal(err)
	}
	cfg.Files = testkit.TrustFiles(e.t, e.pki, identity.Delivery)
	return cfg
}

// workload is 50 channels over the four workspaces (35 in Acme, 5 in each
// other), each channel's commands from one of testPartitions orgs.
type workload struct {
	e        *env
	channels []workloadChannel
	seq      int
}

type workloadChannel struct{ org, team, id string }

func newWorkload(tb testing.TB, e *env) *workload {
	tb.Helper()
	w := &workload{e: e}
	orgsOf := map[string][]string{}
	for _, t := range teams {
		orgsOf[t] = spreadOrgs(tb, t)
	}
	add := func(team, id string) {
		orgs := orgsOf[team]
		w.channels = append(w.channels, workloadChannel{org: orgs[len(w.channels)%len(orgs)], team: team, id: id})
	}
	for i := range 35 {
		add(acme, loadChannel(1+i))
	}
	for _, t := range teams[1:] {
		for i := range teamChannels {
			add(t, teamChannel(t, i))
		}
	}
	access := map[string][]string{}
	for _, c := range w.channels {
		if !slices.Contains(access[c.org], c.team) {
			access[c.org] = append(access[c.org], c.team)
		}
	}
	for org, ts := range access {
		e.setAccess(org, true, ts...)
	}
	return w
}

// commands returns n posts spread round-robin over the channels, texts
// "<prefix> <i>".
func (w *workload) commands(n int, prefix string) []bus.Event {
	cmds := make([]bus.Event, n)
	for i := range cmds {
		c := w.channels[(w.seq+i)%len(w.channels)]
		cmds[i] = postTo(c.org, c.team, c.id, prefix+" "+strconv.Itoa(i))
	}
	w.seq += n
	return cmds
}

// warm posts one message per channel so that tokens, connections and
// buckets exist before timing.
func (w *workload) warm(tb testing.TB) {
	tb.Helper()
	m := startMeasure(tb, w.e)
	w.e.publish(w.commands(len(w.channels), "warm")...)
	m.waitPosted(tb, len(w.channels))
}

// settled waits until the streams stop growing and returns their writes:
// outcomes and audit rows trail the posts by a few milliseconds.
func (m *measure) settled(tb testing.TB) uint64 {
	tb.Helper()
	var writes, prev uint64
	for range 50 {
		writes = streamWrites(tb, m.e.js)
		if writes == prev {
			break
		}
		prev = writes
		time.Sleep(100 * time.Millisecond)
	}
	return writes
}

// measure is one run's counters.
type measure struct {
	e       *env
	posts   int // messages recorded before the run
	writes  uint64
	calls   int
	mem     runtime.MemStats
	allocs  allocSnapshot
	retain0 uint64
	cpu     time.Duration
}

func startMeasure(tb testing.TB, e *env) *measure {
	tb.Helper()
	// The heap profile samples one allocation in every 512 KB by default:
	// a few thousand samples a run, too few to attribute per part.
	runtime.MemProfileRate = egressProfileRate
	m := &measure{e: e, posts: len(e.slack.Messages(slackstandin.MessageFilter{}))}
	m.writes = streamWrites(tb, e.js)
	m.calls = slackCalls(e.slack)
	m.retain0 = liveHeap()
	m.allocs = takeAllocs(tb)
	runtime.ReadMemStats(&m.mem)
	m.cpu = cpuTime()
	return m
}

func (m *measure) waitPosted(tb testing.TB, n int) {
	tb.Helper()
	// No slower than 200 posts/s: a bench that fails says so.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second+time.Duration(n)*5*time.Millisecond)
	defer cancel()
	if _, err := m.e.slack.WaitForCount(ctx, m.posts+n, slackstandin.MessageFilter{}); err != nil {
		tb.Fatal(err)
	}
}

// report adds the per-post figures of the run of n posts since
// startMeasure. Stream writes and retained heap are read once the outcomes
// are settled (outcomes are published after the post).
func (m *measure) report(b *testing.B, n int) {
	writes := m.settled(b)
	// CPU time per post does not depend on what else the machine runs:
	// 2 cores / cpu-us/post is the rate two idle cores would carry.
	b.ReportMetric(float64(cpuTime()-m.cpu)/float64(time.Microsecond)/float64(n), "cpu-us/post")
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	total, objects := float64(after.TotalAlloc-m.mem.TotalAlloc)/float64(n), float64(after.Mallocs-m.mem.Mallocs)/float64(n)
	retained := max(float64(liveHeap())-float64(m.retain0), 0) / float64(n)
	shareB, shareN := egressShare(m.allocs, takeAllocs(b))
	b.ReportMetric(total, "B/post")
	b.ReportMetric(objects, "allocs/post")
	b.ReportMetric(total*shareB, "egress-B/post")
	b.ReportMetric(objects*shareN, "egress-allocs/post")
	b.ReportMetric(float64(slackCalls(m.e.slack)-m.calls)/float64(n), "slack-calls/post")
	b.ReportMetric(float64(writes-m.writes)/float64(n), "stream-writes/post")
	b.ReportMetric(retained, "retained-B/post")
}

// streamWrites sums the last sequence of every stream: messages appended.
func streamWrites(tb testing.TB, js jetstream.JetStream) uint64 {
	tb.Helper()
	var total uint64
	l := js.ListStreams(testkit.Context(tb))
	for s := range l.Info() {
		total += s.State.LastSeq
	}
	if err := l.Err(); err != nil {
		tb.Fatal(err)
	}
	return total
}

func slackCalls(s *slackstandin.Server) int {
	n := 0
	for _, c := range s.Stats().Calls {
		n += c
	}
	return n
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// rssSampler records the highest resident set size (MB) seen while it
// runs: of this process, or of the one whose /proc/<pid>/status is status.
type rssSampler struct {
	status string
	done   chan struct{}
	wg     sync.WaitGroup
	peak   float64
}

func (r *rssSampler) start() {
	if r.status == "" {
		r.status = "/proc/self/status"
	}
	r.done = make(chan struct{})
	r.wg.Go(func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-r.done:
				return
			case <-t.C:
				r.peak = max(r.peak, statusRSS(r.status))
			}
		}
	})
}

func (r *rssSampler) stop() float64 {
	close(r.done)
	r.wg.Wait()
	return r.peak
}

// rssMB reads the process's resident set size (Linux).
func rssMB() float64 { return statusRSS("/proc/self/status") }

// spreadOrgs returns one org id per partition: orgs whose commands to team
// fall in partitions 0 to P-1.
func spreadOrgs(tb testing.TB, team string) []string {
	tb.Helper()
	orgs := make([]string, testPartitions)
	found := 0
	for i := 0; found < testPartitions && i < 100000; i++ {
		org := fmt.Sprintf("org-bench-%d", i)
		if k := partition.Of(org, team, testPartitions); orgs[k] == "" {
			orgs[k] = org
			found++
		}
	}
	if found < testPartitions {
		tb.Fatal("no org for some partition")
	}
	return orgs
}

// BenchmarkRateLimitedBacklog: a backlog of 1,000 messages to one channel
// limited to 100/s (Slack and delivery configured alike). The ideal is
// 1,000 / 100 = 10 s; x-ideal is the time taken over that.
func BenchmarkRateLimitedBacklog(b *testing.B) {
	const (
		org     = "org-bench"
		backlog = 1000
		rate    = 100
		burst   = 2
	)
	for range b.N {
		e := newEnv(b, envOptions{channel: slackstandin.Limit{Rate: rate, Burst: burst}})
		e.setAccess(org, true, acme)
		cfg := e.config()
		cfg.ChannelRate, cfg.ChannelBurst = rate, burst
		e.start(cfg)
		cmds := make([]bus.Event, backlog)
		for i := range cmds {
			cmds[i] = postTo(org, acme, loadChannel(0), fmt.Sprintf("Q %d", i))
		}
		start := time.Now()
		e.publish(cmds...)
		ctx := testkit.Context(b)
		if _, err := e.slack.WaitForCount(ctx, backlog, slackstandin.MessageFilter{Channel: loadChannel(0)}); err != nil {
			b.Fatal(err)
		}
		el := time.Since(start)
		ideal := time.Duration(backlog) * time.Second / rate
		b.ReportMetric(el.Seconds(), "backlog-s")
		b.ReportMetric(el.Seconds()/ideal.Seconds(), "x-ideal")
		b.ReportMetric(float64(e.slack.Stats().RateLimited["chat.postMessage"]), "429s")
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
