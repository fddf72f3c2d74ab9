package feed_test

import (
	"log/slog"
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

// TestApplierReadsASchemaItHasNotSeen: a record snapshot that names a
// schema the applier has not been given is applied with the schema read
// from the stream; one that carries its own schema (as snapshots did before
// schemas were stored apart) is applied as it is; one naming a schema the
// stream lacks is refused.
func TestApplierReadsASchemaItHasNotSeen(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	_, w, _ := streams(t, ctx)
	schema := seedset.Schemas()["Leads"]
	data, hash, err := snapshot.EncodeSchema(schema)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.PutSchema(ctx, seedset.Org, "Leads", hash, data); err != nil {
		t.Fatal(err)
	}
	if err := w.PutSchema(ctx, seedset.Org, "Leads", hash, data); err != nil { // again: already there, fine
		t.Fatal(err)
	}
	m := feedMetrics(t)
	store := projection.New()
	a := &feed.Applier{Records: store, Users: crmusers.New(), Log: slog.New(slog.DiscardHandler), Metrics: m, Schemas: w}
	leads := seedset.GeneratedLeads(3)
	msg := func(rec *crmv1.Record, withSchema bool) snapshot.Msg {
		ev := &crmv1.RecordUpserted{Envelope: &commonv1.Envelope{EventId: "e-" + rec.GetId(), OrgId: seedset.Org}, Record: rec}
		if withSchema {
			ev.Schema = schema
		}
		b, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		return snapshot.Msg{Subject: snapshot.RecordSubject(seedset.Org, "Leads", rec.GetId()), Type: "crmslack.crm.v1.RecordUpserted", Data: b}
	}
	stripped := msg(leads[0], false)
	stripped.Schema = hash
	a.Record(stripped)
	a.Record(msg(leads[1], true))
	unknown := msg(leads[2], false)
	unknown.Schema = "00000000000000000000000000000000"
	a.Record(unknown)
	for i, want := range []bool{true, true, false} {
		rec, ok, err := store.Get(seedset.Org, "Leads", leads[i].GetId())
		if err != nil || ok != want || (ok && !proto.Equal(rec, leads[i])) {
			t.Errorf("%s: held %v (%v), want %v", leads[i].GetId(), ok, err, want)
		}
	}
}
