package feed_test

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/testkit"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	"github.com/crmslack/crmslack/services/query/internal/crmusers"
	"github.com/crmslack/crmslack/services/query/internal/feed"
	"github.com/crmslack/crmslack/services/query/internal/projection"
	"github.com/crmslack/crmslack/services/query/internal/seedset"
	"github.com/crmslack/crmslack/services/query/internal/snapshot"
)

// TestParallelRebuildEndsWithLatestVersions: records written in many
// versions, some deleted and some deleted then upserted again, through the
// persister; a replica following with FollowParallel (as the query binary
// does) is caught up only with the latest version of every record and
// every delete applied, and then applies live versions, in whatever order
// the persister got them, to the same end.
func TestParallelRebuildEndsWithLatestVersions(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	js, records, users := streams(t, ctx)
	m := feedMetrics(t)
	p := feed.NewPersister(records, users, m)
	schema := seedset.Schemas()["Leads"]
	leads := seedset.GeneratedLeads(200)

	// version v of lead i: upserted with its name saying v, but deleted at
	// the versions deletedAt says (every third lead at 3, every fifth at 5
	// and upserted again at 6).
	deletedAt := func(i int, v int64) bool { return (i%3 == 0 && v == 3) || (i%5 == 0 && v == 5) }
	version := func(i int, v int64) *crmv1.Record {
		r := proto.CloneOf(leads[i])
		r.Version = v
		r.Fields["Last_Name"] = seedset.Text(fmt.Sprintf("v%d", v))
		return r
	}
	write := func(i int, v int64) {
		t.Helper()
		env := &commonv1.Envelope{EventId: fmt.Sprintf("e-%d-%d", i, v), OrgId: seedset.Org}
		var err error
		if deletedAt(i, v) {
			err = p.RecordDeleted(ctx, &crmv1.RecordDeleted{Envelope: env, Module: "Leads", RecordId: leads[i].GetId(), Version: v})
		} else {
			err = p.RecordUpserted(ctx, &crmv1.RecordUpserted{Envelope: env, Record: version(i, v), Schema: schema})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// check lists the leads store holds otherwise than versions up to upTo
	// leave them.
	check := func(store *projection.Store, upTo int64) []string {
		var wrong []string
		for i, l := range leads {
			got, ok, err := store.Get(seedset.Org, "Leads", l.GetId())
			switch {
			case err != nil:
				wrong = append(wrong, fmt.Sprintf("%s: %v", l.GetId(), err))
			case deletedAt(i, upTo) && ok:
				wrong = append(wrong, fmt.Sprintf("%s: held at version %d, want deleted", l.GetId(), got.GetVersion()))
			case !deletedAt(i, upTo) && (!ok || !proto.Equal(got, version(i, upTo))):
				wrong = append(wrong, fmt.Sprintf("%s: held %v at version %d, want version %d", l.GetId(), ok, got.GetVersion(), upTo))
			}
		}
		return wrong
	}

	// Before the replica starts: versions 1 to 3 of every lead, in a
	// random order (the persister keeps the highest).
	type write1 struct {
		i int
		v int64
	}
	var before []write1
	for i := range leads {
		for v := int64(1); v <= 3; v++ {
			before = append(before, write1{i, v})
		}
	}
	rand.Shuffle(len(before), func(a, b int) { before[a], before[b] = before[b], before[a] })
	for _, w := range before {
		write(w.i, w.v)
	}

	store := projection.New()
	a := &feed.Applier{Records: store, Users: crmusers.New(), Log: slog.New(slog.DiscardHandler), Metrics: m, Schemas: records}
	f, err := snapshot.FollowParallel(ctx, js, snapshot.StreamRecords, a.Log, a.PrepareRecord, a.ApplyRecord)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Stop(ctx) }()
	testkit.Closed(t, f.CaughtUp(), testkit.DefaultTimeout, "caught up")
	// Nothing else writes now, so what caught up means is checked exactly.
	if wrong := check(store, 3); len(wrong) > 0 {
		t.Fatalf("caught up with %d leads wrong: %v", len(wrong), wrong[:min(len(wrong), 5)])
	}

	// Live: versions 4 to 6, each lead's in order, leads interleaved.
	for v := int64(4); v <= 6; v++ {
		for i := range leads {
			write(i, v)
		}
	}
	var wrong []string
	testkit.Eventually(t, testkit.DefaultTimeout, func() bool { wrong = check(store, 6); return len(wrong) == 0 })
}
