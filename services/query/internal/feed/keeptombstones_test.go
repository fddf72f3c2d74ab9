package feed_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/testkit"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	"github.com/crmslack/crmslack/services/query/internal/crmusers"
	"github.com/crmslack/crmslack/services/query/internal/feed"
	"github.com/crmslack/crmslack/services/query/internal/projection"
	"github.com/crmslack/crmslack/services/query/internal/seedset"
	"github.com/crmslack/crmslack/services/query/internal/snapshot"
)

// TestRebuildKeepsAnEarlierBuildsTombstones: a tombstone an earlier build
// wrote with a TTL is made permanent after the rebuild (an imported batch,
// kept for ever, must not outlive the delete that superseded it); this
// build's own tombstones, already permanent, are left alone; a second run
// finds nothing left to do.
func TestRebuildKeepsAnEarlierBuildsTombstones(t *testing.T) {
	t.Parallel()
	ctx := testkit.Context(t)
	js, records, users := streams(t, ctx)
	m := feedMetrics(t)
	p := feed.NewPersister(records, users, m)
	leads := seedset.GeneratedLeads(2)
	for i, l := range leads {
		env := &commonv1.Envelope{EventId: "up-" + l.GetId(), OrgId: seedset.Org}
		if err := p.RecordUpserted(ctx, &crmv1.RecordUpserted{Envelope: env, Record: l, Schema: seedset.Schemas()["Leads"]}); err != nil {
			t.Fatal(err)
		}
		if i == 0 { // this build's delete
			env := &commonv1.Envelope{EventId: "del-" + l.GetId(), OrgId: seedset.Org}
			if err := p.RecordDeleted(ctx, &crmv1.RecordDeleted{Envelope: env, Module: "Leads", RecordId: l.GetId(), Version: l.GetVersion() + 1}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// An earlier build's delete of the second lead, with a TTL.
	legacy := leads[1]
	ev := &crmv1.RecordDeleted{Envelope: &commonv1.Envelope{EventId: "old-del", OrgId: seedset.Org}, Module: "Leads", RecordId: legacy.GetId(), Version: legacy.GetVersion() + 1}
	data, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	subj := snapshot.RecordSubject(seedset.Org, "Leads", legacy.GetId())
	old := &nats.Msg{Subject: subj, Data: data, Header: nats.Header{}}
	old.Header.Set(bus.HeaderType, string(proto.MessageName(ev)))
	old.Header.Set(snapshot.HeaderVersion, "2")
	if _, err := js.PublishMsg(ctx, old, jetstream.WithMsgTTL(30*24*time.Hour)); err != nil {
		t.Fatal(err)
	}

	a := &feed.Applier{Records: projection.New(), Users: crmusers.New(), Log: slog.New(slog.DiscardHandler), Metrics: m, Schemas: records}
	f, err := snapshot.FollowParallel(ctx, js, snapshot.StreamRecords, a.Log, a.PrepareRecord, a.ApplyRecord)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Stop(ctx) }()
	testkit.Closed(t, f.CaughtUp(), testkit.DefaultTimeout, "caught up")

	if n, err := a.KeepTombstones(ctx, records); err != nil || n != 1 {
		t.Fatalf("KeepTombstones: %d, %v; want the earlier build's one tombstone", n, err)
	}
	st, err := js.Stream(ctx, snapshot.StreamRecords)
	if err != nil {
		t.Fatal(err)
	}
	last, err := st.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		t.Fatal(err)
	}
	if last.Header.Get(jetstream.MsgTTLHeader) != "" || string(last.Data) != string(data) {
		t.Fatalf("the earlier build's tombstone after the rebuild: %v; want it without its TTL", last.Header)
	}
	if n, err := a.KeepTombstones(ctx, records); err != nil || n != 0 {
		t.Fatalf("a second KeepTombstones: %d, %v; want nothing", n, err)
	}
}
