package mongorepo_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/testkit"

	"github.com/crmslack/crmslack/services/sharing/internal/app"
	"github.com/crmslack/crmslack/services/sharing/internal/mongorepo"
	"github.com/crmslack/crmslack/services/sharing/internal/share"
)

// TestRepo runs against the embedded FerretDB: inserts only, a taken id
// reported, duplicate outcomes skipped, and listing newest first across
// pages, by time and by sharer.
func TestRepo(t *testing.T) {
	t.Parallel()
	st := testkit.Store(t, "sharing_repo")
	ctx := testkit.Context(t)
	if err := st.EnsureIndexes(ctx, mongorepo.Indexes()); err != nil {
		t.Fatal(err)
	}
	r := mongorepo.New(st.DB())
	t0 := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 5 {
		s := share.Share{
			ID: fmt.Sprintf("sh-%02d", i), Org: "o1", Kind: share.KindRecord, What: "Deals d1", Team: "T1",
			TargetKind: share.Channels, Targets: []string{"C1"}, Sharer: share.Person{ID: fmt.Sprintf("u%d", i%2), Email: "a@b.c"},
			Via: share.ViaGRPC, SharedAt: t0.Add(time.Duration(i/2) * time.Minute), // two by two at the same instant
			Commands: []string{fmt.Sprintf("sh-%02d/C1", i)}, Fingerprint: "f",
		}
		created, err := r.Create(ctx, s)
		if err != nil || !created {
			t.Fatalf("create %d: %v %v", i, created, err)
		}
		ids = append(ids, s.ID)
	}
	if created, err := r.Create(ctx, share.Share{ID: "sh-00", Org: "o1"}); err != nil || created {
		t.Fatalf("a taken id: created=%v err=%v", created, err)
	}
	if _, err := r.Create(ctx, share.Share{ID: "sh-x", Org: "o2", SharedAt: t0}); err != nil {
		t.Fatal(err)
	}
	got, found, err := r.Get(ctx, "sh-03")
	if err != nil || !found || got.Sharer.ID != "u1" || !got.SharedAt.Equal(t0.Add(time.Minute)) || got.TargetKind != share.Channels || got.Commands[0] != "sh-03/C1" {
		t.Fatalf("get: %+v %v %v", got, found, err)
	}
	if _, found, err := r.Get(ctx, "sh-none"); found || err != nil {
		t.Fatalf("get missing: %v %v", found, err)
	}

	var listed []string
	q := app.ListQuery{Org: "o1", Limit: 2}
	for {
		page, err := r.List(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range page {
			listed = append(listed, s.ID)
		}
		if len(page) < q.Limit {
			break
		}
		last := page[len(page)-1]
		q.AfterAt, q.AfterID = last.SharedAt, last.ID
	}
	if want := []string{"sh-04", "sh-03", "sh-02", "sh-01", "sh-00"}; !slices.Equal(listed, want) {
		t.Errorf("listed %v, want %v", listed, want)
	}
	page, err := r.List(ctx, app.ListQuery{Org: "o1", From: t0.Add(time.Minute), To: t0.Add(2 * time.Minute), SharerID: "u1", Limit: 10})
	if err != nil || len(page) != 1 || page[0].ID != "sh-03" {
		t.Errorf("by time and sharer: %v %v", page, err)
	}

	o := share.Outcome{ID: "ev-1", ShareID: "sh-01", CommandID: "sh-01/C1", Delivered: true, Channel: "C1", At: t0}
	if err := r.AddOutcomes(ctx, o, share.Outcome{ID: "ev-2", ShareID: "sh-02", CommandID: "sh-02/C1", Reason: "not_in_channel", At: t0}); err != nil {
		t.Fatal(err)
	}
	if err := r.AddOutcomes(ctx, o, share.Outcome{ID: "ev-3", ShareID: "sh-01", CommandID: "sh-01/C1", Unsent: true, At: t0}); err != nil {
		t.Fatalf("a redelivered outcome with a new one: %v", err)
	}
	outs, err := r.Outcomes(ctx, []string{"sh-01", "sh-02"})
	if err != nil || len(outs) != 3 {
		t.Fatalf("outcomes %+v %v", outs, err)
	}
}
