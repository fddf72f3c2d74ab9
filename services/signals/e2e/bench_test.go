package e2e

import (
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

// BenchmarkSignalsEndToEnd: 20,000 missed-call signals for 500 owners
// (40 each, every one from a customer of its own, so each is a post of
// its own: storm control does not shrink the work) published to the CRM
// stream at once, carried by the signals service (matrix, owner lookup,
// storm-control group, handled marker) and the delivery service into the
// Slack stand-in's DMs. signals/s from the first publish to the last post;
// p50 and p99 of each signal's latency from its publish to its post, which
// includes the wait behind the signals published before it.
//
// Slack paces chat.postMessage to about one per second per conversation,
// which delivery enforces (DELIVERY_CHANNEL_RATE, default 1): 40 posts to
// one DM take 40 s in Slack whatever the product does. The benchmark
// lifts that pacing (1000/s per DM) to measure the product, and keeps
// every other default of both services. One op is the whole run; ns/op
// is left out.
func BenchmarkSignalsEndToEnd(b *testing.B) {
	n := envInt(b, "SIGNALS_BENCH_SIGNALS", benchSignals)
	owners := envInt(b, "SIGNALS_BENCH_OWNERS", benchOwners)
	// The warm-up opens every owner's DM, which Slack's tier 3 (50 a minute)
	// would spread over minutes; the run itself opens none.
	s := startStack(b, options{seed: benchSeed(owners), tierOverrides: "conversations.open=off", quiet: true})
	// Warm up: the team's directory, the DM of each owner... are part of
	// steady state, not of the run.
	warm := make([]*crmv1.SalesSignal, owners)
	for i := range warm {
		warm[i] = signal(call, "missed", "warm-"+strconv.Itoa(i), ownerEmail(i), time.Now())
	}
	s.publish(b, warm...)
	if _, err := s.standin.WaitForMessages(testkit.Context(b), owners, slackstandin.MessageFilter{Kind: slackstandin.KindMessage}); err != nil {
		b.Fatal(err)
	}

	for range b.N {
		base := len(s.standin.Messages(slackstandin.MessageFilter{Kind: slackstandin.KindMessage}))
		calls := s.standin.Stats().Calls["chat.postMessage"]
		evs := make([]*crmv1.SalesSignal, n)
		items := make([]bus.Published, n)
		for i := range evs {
			evs[i] = signal(call, "missed", "b"+strconv.Itoa(i), ownerEmail(i%owners), time.Now())
			subj, err := topology.SubjectFor(evs[i])
			if err != nil {
				b.Fatal(err)
			}
			items[i] = bus.Published{Subject: subj, Event: evs[i]}
		}
		b.ResetTimer()
		start := time.Now()
		published := make([]time.Time, n)
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
		// Polled on the stand-in's call counter: waiting on its message log
		// would rescan the whole log for every post, costing the run more
		// than the product does.
		testkit.Eventually(b, 10*time.Minute, func() bool {
			return s.standin.Stats().Calls["chat.postMessage"] >= calls+n
		}, "every signal posted")
		elapsed := time.Since(start)
		b.StopTimer()
		msgs := s.standin.Messages(slackstandin.MessageFilter{Kind: slackstandin.KindMessage})
		if len(msgs) != base+n {
			b.Fatalf("%d posts recorded, want %d", len(msgs)-base, n)
		}
		lat := make([]time.Duration, 0, n)
		for _, m := range msgs[base:] {
			i, ok := benchIndex(m.Text)
			if !ok {
				b.Fatalf("unexpected message %q", m.Text)
			}
			lat = append(lat, m.Time.Sub(published[i]))
		}
		if len(lat) != n {
			b.Fatalf("%d posts for %d signals", len(lat), n)
		}
		slices.Sort(lat)
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(float64(n)/elapsed.Seconds(), "signals/s")
		b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
		b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
		b.ReportMetric(float64(n), "signals")
		b.ReportMetric(float64(owners), "owners")
	}
}

// benchIndex reads i back from "Missed call from Customer b<i>".
func benchIndex(text string) (int, bool) {
	_, rest, ok := strings.Cut(text, "Customer b")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(rest)
	return i, err == nil
}
