package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/slackstandin"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/topology"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

// Benchmark sizes; SIGNALS_BENCH_SIGNALS and SIGNALS_BENCH_OWNERS make a
// quicker run while working on the pipeline (and the log says so).
const (
	benchSignals = 20_000
	benchOwners  = 500
)

func envInt(tb testing.TB, name string, def int) int {
	v, ok := os.LookupEnv(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		tb.Fatalf("%s=%q is not a positive number", name, v)
	}
	tb.Logf("%s=%d instead of %d", name, n, def)
	return n
}

// benchSeed is the default seed with owners more people in Acme.
func benchSeed(owners int) *slackstandin.Seed {
	seed := slackstandin.DefaultSeed()
	for i := range owners {
		seed.Workspaces[0].Users = append(seed.Workspaces[0].Users, slackstandin.User{
			ID: fmt.Sprintf("U0BENCH%04d", i), Name: fmt.Sprintf("owner%d", i), RealName: fmt.Sprintf("Owner %d", i),
			Email: ownerEmail(i), TZ: "Europe/Paris",
		})
	}
	return seed
}

func ownerEmail(i int) string { return fmt.Sprintf("owner%d@acme.example", i) }

// BenchmarkSignalsEndToEnd: missed-call signals for 500 owners, every one
// from a customer of its own (so each is a post of its own: storm control
// does not shrink the work), published to the CRM stream, carried by the
// signals service (matrix, owner lookup, storm-control group) and the
// delivery service into the Slack stand-in's DMs.
//
//   - burst: 20,000 signals (40 per owner) published at once; signals/s from
//     the first publish to the last post. Each signal's latency, publish to
//     post, includes its wait behind the signals published before it.
//   - paced: 3,000 signals at a steady 100 a second, each on its own; the
//     latency of the pipeline when it is not behind.
//
// Slack paces chat.postMessage to about one per second per conversation,
// which delivery enforces (DELIVERY_CHANNEL_RATE, default 1): 40 posts to
// one DM take 40 s in Slack whatever the product does. The benchmark
// lifts that pacing (1000/s per DM) to measure the product, and keeps
// every other default of both services. One op is a whole run; ns/op is
// left out.
func BenchmarkSignalsEndToEnd(b *testing.B) {
	n := envInt(b, "SIGNALS_BENCH_SIGNALS", benchSignals)
	owners := envInt(b, "SIGNALS_BENCH_OWNERS", benchOwners)
	// The warm-up opens every owner's DM, which Slack's tier 3 (50 a minute)
	// would spread over minutes; the runs open none.
	s := startStack(b, options{seed: benchSeed(owners), tierOverrides: "conversations.open=off", quiet: true})
	warm := make([]*crmv1.SalesSignal, owners)
	for i := range warm {
		warm[i] = signal(call, "missed", "warm-"+strconv.Itoa(i), ownerEmail(i), time.Now())
	}
	s.publish(b, warm...)
	s.waitPosts(b, owners)
	run := 0
	b.Run("burst", func(b *testing.B) {
		for range b.N {
			run++
			s.measure(b, fmt.Sprintf("r%d-", run), n, owners, 0)
		}
	})
	b.Run("paced", func(b *testing.B) {
		for range b.N {
			run++
			s.measure(b, fmt.Sprintf("r%d-", run), envInt(b, "SIGNALS_BENCH_PACED", 3000), owners, 100)
		}
	})
}

// waitPosts waits until the stand-in took n chat.postMessage calls in all.
// It polls the call counter: waiting on the message log would rescan the
// whole log for every post, costing the run more than the product does.
func (s *stack) waitPosts(b *testing.B, n int) {
	b.Helper()
	testkit.Eventually(b, 10*time.Minute, func() bool {
		return s.standin.Stats().Calls["chat.postMessage"] >= n
	}, "%d posts", n)
}

// measure publishes n signals (at rate per second, or all at once for 0)
// and reports throughput and latency.
func (s *stack) measure(b *testing.B, prefix string, n, owners int, rate int) {
	base := len(s.standin.Messages(slackstandin.MessageFilter{Kind: slackstandin.KindMessage}))
	calls := s.standin.Stats().Calls["chat.postMessage"]
	items := make([]bus.Published, n)
	for i := range items {
		ev := signal(call, "missed", prefix+strconv.Itoa(i), ownerEmail(i%owners), time.Now())
		subj, err := topology.SubjectFor(ev)
		if err != nil {
			b.Fatal(err)
		}
		items[i] = bus.Published{Subject: subj, Event: ev}
	}
	published := make([]time.Time, n)
	b.ResetTimer()
	start := time.Now()
	if rate == 0 {
		const chunk = 1000
		for i := 0; i < n; i += chunk {
			j := min(i+chunk, n)
			if err := s.bus.PublishBatch(testkit.Context(b), items[i:j]); err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			for k := i; k < j; k++ {
				published[k] = now
			}
		}
	} else {
		tick := time.NewTicker(time.Second / time.Duration(rate))
		for i := range items {
			<-tick.C
			published[i] = time.Now()
			pctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := s.bus.Publish(pctx, items[i].Subject, items[i].Event)
			cancel()
			if err != nil {
				b.Fatal(err)
			}
		}
		tick.Stop()
	}
	s.waitPosts(b, calls+n)
	elapsed := time.Since(start)
	b.StopTimer()
	msgs := s.standin.Messages(slackstandin.MessageFilter{Kind: slackstandin.KindMessage})
	if len(msgs) != base+n {
		b.Fatalf("%d posts recorded, want %d", len(msgs)-base, n)
	}
	lat := make([]time.Duration, 0, n)
	for _, m := range msgs[base:] {
		i, ok := benchIndex(m.Text, prefix)
		if !ok {
			b.Fatalf("unexpected message %q", m.Text)
		}
		lat = append(lat, m.Time.Sub(published[i]))
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(0, "ns/op")
	if rate == 0 {
		b.ReportMetric(float64(n)/elapsed.Seconds(), "signals/s")
	} else {
		b.ReportMetric(float64(rate), "offered/s")
	}
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
	b.ReportMetric(float64(n), "signals")
	b.ReportMetric(float64(owners), "owners")
}

// benchIndex reads i back from "Missed call from Customer <prefix><i>".
func benchIndex(text, prefix string) (int, bool) {
	_, rest, ok := strings.Cut(text, "Customer "+prefix)
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(rest)
	return i, err == nil
}

// BenchmarkSignalsToEgress is the signals service alone: 20,000 missed-call
// signals for 500 owners (each from a customer of its own) published at
// once, until every post command is on SLACK_OUT for the egress, which is
// not running. signals/s of the service by itself, with the same work per
// signal as end to end (matrix, owner lookup, one conditional write, one
// publish).
func BenchmarkSignalsToEgress(b *testing.B) {
	n := envInt(b, "SIGNALS_BENCH_SIGNALS", benchSignals)
	owners := envInt(b, "SIGNALS_BENCH_OWNERS", benchOwners)
	s := startStack(b, options{seed: benchSeed(owners), quiet: true, noDelivery: true})
	ctx := testkit.Context(b)
	out, err := s.js.Stream(ctx, topology.StreamSlackOut)
	if err != nil {
		b.Fatal(err)
	}
	commands := func() uint64 {
		info, err := out.Info(testkit.Context(b))
		if err != nil {
			b.Fatal(err)
		}
		return info.State.Msgs
	}
	for run := range b.N {
		base := commands()
		items := make([]bus.Published, n)
		for i := range items {
			ev := signal(call, "missed", fmt.Sprintf("e%d-%d", run, i), ownerEmail(i%owners), time.Now())
			subj, err := topology.SubjectFor(ev)
			if err != nil {
				b.Fatal(err)
			}
			items[i] = bus.Published{Subject: subj, Event: ev}
		}
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < n; i += 1000 {
			if err := s.bus.PublishBatch(testkit.Context(b), items[i:min(i+1000, n)]); err != nil {
				b.Fatal(err)
			}
		}
		testkit.Eventually(b, 10*time.Minute, func() bool { return commands() >= base+uint64(n) }, "every post command on SLACK_OUT")
		elapsed := time.Since(start)
		b.StopTimer()
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(float64(n)/elapsed.Seconds(), "signals/s")
		b.ReportMetric(float64(n), "signals")
		b.ReportMetric(float64(owners), "owners")
	}
}
