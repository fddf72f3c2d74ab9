package delivery_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/services/delivery/internal/partition"
)

// BenchmarkSustainedPostsOwnProcess is BenchmarkSustainedPosts with each
// delivery replica in a process of its own, as it runs in production, beside
// the bench's process (NATS, FerretDB, the Slack stand-in and the team
// registry stand-in). What delivery allocates, its CPU time and its resident
// memory are read from its processes themselves (runtime.MemStats,
// getrusage, /proc), not attributed by profile: delivery-B/post,
// delivery-allocs/post and delivery-cpu-us/post (all replicas together),
// delivery-retained-MB (live heap after a collection, after the run
// against before it: the same at both sizes when nothing is kept per
// post), delivery-rss-peak-MB (the highest of one replica while the run goes) and
// delivery-rss-drained-MB (the largest replica once every outcome is
// settled).
func BenchmarkSustainedPostsOwnProcess(b *testing.B) {
	for _, replicas := range []int{1, 2} {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("replicas=%d/posts=%d", replicas, n), func(b *testing.B) {
				e := newEnv(b, envOptions{bench: true})
				w := newWorkload(b, e)
				var cs []*child
				for range replicas {
					cs = append(cs, e.startUsageChild(b))
				}
				e.waitSplit(b, replicas)
				w.warm(b)
				for range b.N {
					cmds := w.commands(n, "B")
					m := startMeasure(b, e)
					var u0 usage
					var rss []*rssSampler
					for _, c := range cs {
						u0 = u0.plus(c.usage(b))
						rss = append(rss, c.sampleRSS())
					}
					start := time.Now()
					e.publish(cmds...)
					m.waitPosted(b, n)
					el := time.Since(start)
					b.StopTimer()
					m.settled(b)
					var u1 usage
					var peak, drained float64
					for i, c := range cs {
						u := c.usage(b)
						u1 = u1.plus(u)
						drained = max(drained, float64(u.RSS)/(1<<20))
						peak = max(peak, rss[i].stop(), drained)
					}
					b.ReportMetric(float64(n)/el.Seconds(), "posts/s")
					u1.report(b, u0, n)
					b.ReportMetric(peak, "delivery-rss-peak-MB")
					b.ReportMetric(drained, "delivery-rss-drained-MB")
					b.StartTimer()
				}
			})
		}
	}
}

// waitSplit waits until the partitions are split evenly between replicas
// instances.
func (e *env) waitSplit(tb testing.TB, replicas int) {
	tb.Helper()
	testkit.Eventually(tb, 30*time.Second, func() bool {
		if _, err := e.js.KeyValue(testkit.Context(tb), partition.Bucket); err != nil {
			return false // the replicas have not made it yet
		}
		per := map[string]int{}
		for _, inst := range e.owners(tb) {
			per[inst]++
		}
		if len(per) != replicas {
			return false
		}
		for _, k := range per {
			if k != testPartitions/replicas {
				return false
			}
		}
		return true
	}, "the partitions are split between %d replicas", replicas)
}

// BenchmarkPostLatencyOwnProcess is BenchmarkPostLatency with delivery in a
// process of its own: p50/p99 enqueue → accepted, and that process's
// resident memory at the steady rate (rss-steady-MB, the highest seen) and
// once the backlog drained, with its delivery-B/post and CPU.
func BenchmarkPostLatencyOwnProcess(b *testing.B) {
	for _, rate := range []int{2_500, 5_000} {
		n := 10 * rate
		b.Run(fmt.Sprintf("rate=%d/posts=%d", rate, n), func(b *testing.B) { postLatency(b, rate, n, true) })
	}
}

// startUsageChild starts delivery, with the bench's configuration, in a
// process of its own that reports its usage.
func (e *env) startUsageChild(tb testing.TB) *child {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "usage")
	return &child{cmd: e.startChildWith(tb, benchConfig(e), usageEnv+"="+path), path: path}
}

// plus is u and v together (RSS: the larger).
func (u usage) plus(v usage) usage {
	return usage{Seq: v.Seq, TotalAlloc: u.TotalAlloc + v.TotalAlloc, Mallocs: u.Mallocs + v.Mallocs, CPU: u.CPU + v.CPU,
		RSS: max(u.RSS, v.RSS), Live: u.Live + v.Live}
}

// report adds the delivery process's figures per post since u0 over n posts.
func (u usage) report(b *testing.B, u0 usage, n int) {
	b.ReportMetric(float64(u.TotalAlloc-u0.TotalAlloc)/float64(n), "delivery-B/post")
	b.ReportMetric(float64(u.Mallocs-u0.Mallocs)/float64(n), "delivery-allocs/post")
	b.ReportMetric(float64(u.CPU-u0.CPU)/float64(time.Microsecond)/float64(n), "delivery-cpu-us/post")
	b.ReportMetric(max(float64(u.Live)-float64(u0.Live), 0)/(1<<20), "delivery-retained-MB")
}

// child is delivery running in a process of its own, reporting its usage.
type child struct {
	cmd  *exec.Cmd
	path string
	seq  int
}

// usage asks the child for its usage and waits for the report.
func (c *child) usage(tb testing.TB) usage {
	tb.Helper()
	c.seq++
	if err := c.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		tb.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var u usage
		if b, err := os.ReadFile(c.path); err == nil && json.Unmarshal(b, &u) == nil && u.Seq >= c.seq {
			c.seq = u.Seq
			return u
		}
		time.Sleep(10 * time.Millisecond)
	}
	tb.Fatalf("no usage report %d from the child within 10s", c.seq)
	return usage{}
}

// sampleRSS records the child's highest resident set (MB) until stopped.
func (c *child) sampleRSS() *rssSampler {
	r := &rssSampler{status: "/proc/" + strconv.Itoa(c.cmd.Process.Pid) + "/status"}
	r.start()
	return r
}

// statusRSS reads VmRSS (MB) from a /proc/<pid>/status file.
func statusRSS(path string) float64 {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}
