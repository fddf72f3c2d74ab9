package audit

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/testkit"
)

func TestWriterBatchesAndToleratesDuplicates(t *testing.T) {
	t.Parallel()
	st := testkit.Store(t, "delivery")
	ctx := testkit.Context(t)
	if err := st.EnsureIndexes(ctx, Indexes()); err != nil {
		t.Fatal(err)
	}
	coll := st.Collection(Collection)
	w := NewWriter(coll, 50, 20*time.Millisecond, slog.New(slog.DiscardHandler))
	row := func(i int) Row {
		return Row{ID: "ev-" + string(rune('a'+i%26)) + string(rune('a'+i/26)), OrgID: "o1", Status: 1, CompletedAt: time.Now().UTC().Truncate(time.Millisecond)}
	}
	var wg sync.WaitGroup
	for i := range 120 {
		wg.Go(func() {
			if err := w.Write(ctx, row(i)); err != nil {
				t.Errorf("write %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	// Redelivered events write their rows again: duplicates are fine,
	// mixed with new rows in one batch.
	for i := 100; i < 130; i++ {
		wg.Go(func() {
			if err := w.Write(ctx, row(i)); err != nil {
				t.Errorf("rewrite %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	n, err := coll.CountDocuments(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	if n != 130 {
		t.Fatalf("%d rows, want 130", n)
	}
}

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	c := Cursor{CompletedAt: time.Unix(1700000000, 123e6).UTC(), ID: "ev-1"}
	got, err := DecodeCursor(EncodeCursor(c))
	if err != nil || !got.CompletedAt.Equal(c.CompletedAt) || got.ID != c.ID {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for _, bad := range []string{"", "!!", "e30"} {
		if _, err := DecodeCursor(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestConsumerSpecExplicit(t *testing.T) {
	t.Parallel()
	for _, o := range []string{"succeeded", "failed"} {
		s := ConsumerSpec("d", o, 16)
		if s.MaxDeliver <= 0 || len(s.BackOff) == 0 || s.MaxAckPending <= 0 {
			t.Errorf("%s: MaxDeliver %d, BackOff %v, MaxAckPending %d: every one must be set", o, s.MaxDeliver, s.BackOff, s.MaxAckPending)
		}
		if err := s.Validate(); err != nil {
			t.Errorf("%s: %v", o, err)
		}
	}
}

func TestRowIDsIncreaseWithTheRequest(t *testing.T) {
	t.Parallel()
	at := func(sec int64) *timestamppb.Timestamp { return timestamppb.New(time.Unix(sec, 0)) }
	a, b := RowID(at(1700000000), "ffff-event"), RowID(at(1700000001), "0000-event")
	if a >= b || len(a) != len(b) {
		t.Errorf("ids %q, %q: a later request must sort after, at the same width", a, b)
	}
	if RowID(at(1700000000), "e1") != RowID(at(1700000000), "e1") || RowID(at(1700000000), "e1") == RowID(at(1700000000), "e2") {
		t.Error("one command must make one id, two commands two")
	}
	if got := RowID(nil, "e1"); got != "0000000000000000-e1" {
		t.Errorf("no request time: %q", got)
	}
}
