package query_test

import (
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/services/query/internal/seedset"
)

func BenchmarkZZImportProfile(b *testing.B) {
	n := 100_000
	ns := testkit.NATS(b)
	_, teamsAddr := startTeams(b)
	pub := publisher(b, ns)
	in := startQuery(b, ns, teamsAddr)
	ctx := testkit.Context(b)
	if err := pub.PublishBatch(ctx, []bus.Published{crmUser(seedset.Org, "crm-ada", "ada@zylker.test", 1)}); err != nil {
		b.Fatal(err)
	}
	leads := seedset.GeneratedLeads(n)
	b.ResetTimer()
	start := time.Now()
	var items []bus.Published
	for i := 0; i < n; i += 500 {
		items = append(items, imported(b, seedset.Org, "Leads", leads[i:min(i+500, n)]...))
	}
	if err := pub.PublishBatch(ctx, items); err != nil {
		b.Fatal(err)
	}
	for got := run(b, in, userAda, "leads").GetTotal(); got != int64(n); got = run(b, in, userAda, "leads").GetTotal() {
		time.Sleep(50 * time.Millisecond)
	}
	b.Logf("%d in %s", n, time.Since(start))
}
