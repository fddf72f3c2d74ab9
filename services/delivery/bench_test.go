package delivery_test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/slackstandin"
	"github.com/crmslack/crmslack/libs/testkit"

	"github.com/crmslack/crmslack/services/delivery/internal/partition"
)

// BenchmarkSustainedPosts measures throughput with no rate limit: b.N posts
// over 50 channels, published at once; posts/s from the first publish to
// the last post in Slack. The channels' commands come from eight orgs that
// fall in the eight partitions, so that replicas=2 splits the work in two
// halves (one replica per four partitions, in this one process).
func BenchmarkSustainedPosts(b *testing.B) {
	for _, replicas := range []int{1, 2} {
		b.Run(fmt.Sprintf("replicas=%d", replicas), func(b *testing.B) {
			e := newEnv(b, envOptions{})
			orgs := spreadOrgs(b, acme)
			for _, org := range orgs {
				e.setAccess(org, true, acme)
			}
			orgOf := func(ch int) string { return orgs[ch%len(orgs)] }
			cfg := e.config()
			cfg.Permalinks = false
			var rs []*running
			for range replicas {
				rs = append(rs, e.start(cfg))
			}
			for _, r := range rs {
				waitOwned(b, r, testPartitions/replicas)
			}
			warm(b, e, orgOf)

			cmds := make([]bus.Event, b.N)
			for i := range cmds {
				ch := 1 + i%50
				cmds[i] = postTo(orgOf(ch), acme, loadChannel(ch), "B "+strconv.Itoa(i))
			}
			base := len(e.slack.Messages(slackstandin.MessageFilter{}))
			b.ResetTimer()
			start := time.Now()
			e.publish(cmds...)
			ctx := testkit.Context(b)
			if _, err := e.slack.WaitForMessages(ctx, base+b.N, slackstandin.MessageFilter{}); err != nil {
				b.Fatal(err)
			}
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el.Seconds(), "posts/s")
		})
	}
}

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

// BenchmarkPostLatency offers posts at a steady 200/s over 50 channels,
// below capacity, and reports the enqueue → posted latency: from the
// command's publish to Slack accepting the message.
func BenchmarkPostLatency(b *testing.B) {
	const (
		org     = "org-bench"
		perSec  = 200
		minimum = 400 // samples, for a meaningful p99
	)
	n := max(b.N, minimum)
	e := newEnv(b, envOptions{})
	e.setAccess(org, true, acme)
	cfg := e.config()
	cfg.Permalinks = false
	e.start(cfg)
	warm(b, e, func(int) string { return org })

	sent := make([]time.Time, n)
	base := len(e.slack.Messages(slackstandin.MessageFilter{}))
	tick := time.NewTicker(time.Second / perSec)
	defer tick.Stop()
	ctx := testkit.Context(b)
	b.ResetTimer()
	for i := range n {
		<-tick.C
		c := postTo(org, acme, loadChannel(1+i%50), "P "+strconv.Itoa(i))
		sent[i] = time.Now()
		if _, err := e.bus.Publish(ctx, subjectOf(c), c); err != nil {
			b.Fatal(err)
		}
	}
	msgs, err := e.slack.WaitForMessages(ctx, base+n, slackstandin.MessageFilter{})
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	lat := make([]time.Duration, 0, n)
	for _, m := range msgs {
		idx, ok := strings.CutPrefix(m.Text, "P ")
		if !ok {
			continue
		}
		i, _ := strconv.Atoi(idx)
		lat = append(lat, m.Time.Sub(sent[i]))
	}
	slices.Sort(lat)
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
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
		cfg.ChannelRate, cfg.ChannelBurst, cfg.Permalinks = rate, burst, false
		e.start(cfg)
		cmds := make([]bus.Event, backlog)
		for i := range cmds {
			cmds[i] = postTo(org, acme, loadChannel(0), fmt.Sprintf("Q %d", i))
		}
		start := time.Now()
		e.publish(cmds...)
		ctx := testkit.Context(b)
		if _, err := e.slack.WaitForMessages(ctx, backlog, slackstandin.MessageFilter{Channel: loadChannel(0)}); err != nil {
			b.Fatal(err)
		}
		el := time.Since(start)
		ideal := time.Duration(backlog) * time.Second / rate
		b.ReportMetric(el.Seconds(), "backlog-s")
		b.ReportMetric(el.Seconds()/ideal.Seconds(), "x-ideal")
		b.ReportMetric(float64(e.slack.Stats().RateLimited["chat.postMessage"]), "429s")
	}
}

// warm posts one message per channel (from orgOf(channel)) so tokens,
// connections and buckets exist before timing.
func warm(b *testing.B, e *env, orgOf func(ch int) string) {
	b.Helper()
	var cmds []bus.Event
	var ids []string
	for ch := 1; ch <= 50; ch++ {
		c := postTo(orgOf(ch), acme, loadChannel(ch), "warm")
		cmds = append(cmds, c)
		ids = append(ids, c.GetEnvelope().GetEventId())
	}
	e.publish(cmds...)
	e.out.wait(b, 30*time.Second, ids...)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
