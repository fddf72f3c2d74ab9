package query_test

import (
	"context"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/testkit"
	queryv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/query/v1"
	"github.com/crmslack/crmslack/services/query/internal/seedset"
)

// BenchmarkRunSlashCommand: 100,000 leads published to the CRM stream and
// carried through the whole pipeline (persister, snapshot stream, every
// replica's follower), then RunSlashCommand over gRPC on loopback, one
// command at a time, for each kind of query; p50 and p99 of single calls
// next to the mean. "rebuild" is the start-up of a second instance:
// replaying the snapshot stream into memory until ready (run it with the
// default -benchtime: -benchtime=Nx restarts N times).
//
// A range on one field is one bound: criteria on the same field are OR'ed
// (the seed's rule), so [x] >= [a] [x] < [b] matches everything.
//
// The gateway-inclusive bench (signed request in, answer out, at a steady
// 50 commands per second) is BenchmarkSlashCommandEndToEnd in e2e.
func BenchmarkRunSlashCommand(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("QUERY_BENCH_RECORDS")); err == nil && v > 0 {
		n = v // a quicker run while working on the pipeline
	}
	ns := testkit.NATS(b)
	_, teamsAddr := startTeams(b)
	pub := publisher(b, ns)
	in := startQuery(b, ns, teamsAddr)

	ctx := testkit.Context(b)
	start := time.Now()
	if err := pub.PublishBatch(ctx, []bus.Published{crmUser(seedset.Org, "crm-ada", "ada@zylker.test", 1)}); err != nil {
		b.Fatal(err)
	}
	leads := seedset.GeneratedLeads(n)
	for i := 0; i < n; i += 2000 {
		batch := make([]bus.Published, 0, 2000)
		for _, r := range leads[i:min(i+2000, n)] {
			batch = append(batch, upsert(seedset.Org, r))
		}
		if err := pub.PublishBatch(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	published := time.Since(start)
	deadline := time.Now().Add(5 * time.Minute)
	lastLog := time.Now()
	for got := run(b, in, userAda, "leads").GetTotal(); got != int64(n); got = run(b, in, userAda, "leads").GetTotal() {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d leads became searchable", got, n)
		}
		if time.Since(lastLog) > 5*time.Second {
			b.Logf("%d of %d leads searchable after %s", got, n, time.Since(start).Round(time.Second))
			lastLog = time.Now()
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Logf("%d leads published in %s, all searchable after %s", n, published.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	for _, bc := range []struct{ name, text string }{
		{"list", "leads"},
		{"global", "leads zylker"},
		{"prefix", "leads [last name] starts with [wat]"},
		{"contains", "leads [company] contains [zyl]"},
		{"numeric-range", "leads [annual revenue] > [150000]"},
		{"multi-field", "leads [lead source] = [webform, tradeshow] [annual revenue] >= [10000] [email] contains [smith] [phone] starts with [555, 234] [age] <= [40]"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := &queryv1.RunSlashCommandRequest{OrgId: seedset.Org, TeamId: team, SlackUserId: userAda, Text: bc.text}
			times := make([]time.Duration, 0, b.N)
			var total int64
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				resp, err := in.client.RunSlashCommand(context.Background(), req)
				if err != nil || resp.GetRefused() {
					b.Fatalf("%v, %v", resp, err)
				}
				times = append(times, time.Since(t0))
				total = resp.GetTotal()
			}
			b.StopTimer()
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(times[len(times)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(total), "matches")
		})
	}

	// The second instance's trust files come from the benchmark's own PKI,
	// the one its NATS users were made from (a sub-benchmark gets its own).
	outer := b
	b.Run("rebuild", func(b *testing.B) {
		for range b.N {
			t0 := time.Now()
			second := startQuery(outer, ns, teamsAddr)
			took := time.Since(t0)
			if got := run(b, second, userAda, "leads").GetTotal(); got != int64(n) {
				b.Fatalf("rebuilt %d leads, want %d", got, n)
			}
			second.stop()
			b.ReportMetric(took.Seconds(), "s-to-ready")
		}
	})
}
