package snapshot_test

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/testkit"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	"github.com/crmslack/crmslack/services/query/internal/snapshot"
)

func streams(t *testing.T) (jetstream.JetStream, *snapshot.Writer) {
	t.Helper()
	ns := testkit.NATS(t)
	js := testkit.JetStream(t, testkit.NATSConn(t, ns))
	ctx := testkit.Context(t)
	for _, sc := range snapshot.StreamConfigs(1, jetstream.FileStorage) {
		if _, err := js.CreateStream(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	w, err := snapshot.NewWriter(ctx, js, snapshot.StreamRecords)
	if err != nil {
		t.Fatal(err)
	}
	return js, w
}

func deleted(v int64) *crmv1.RecordDeleted {
	return &crmv1.RecordDeleted{Envelope: &commonv1.Envelope{OrgId: "o"}, Module: "Deals", RecordId: "d1", Version: v}
}

// TestPutOnlyMovesForward: whatever the order and however many writers,
// the subject ends with the highest version.
func TestPutOnlyMovesForward(t *testing.T) {
	t.Parallel()
	js, w := streams(t)
	ctx := testkit.Context(t)
	subj := snapshot.RecordSubject("o", "Deals", "d1")
	put := func(v int64) bool {
		t.Helper()
		wrote, err := w.Put(ctx, subj, snapshot.RecordMsgID("o", "Deals", "d1", v), v, deleted(v))
		if err != nil {
			t.Fatal(err)
		}
		return wrote
	}
	if !put(2) || put(1) || put(2) {
		t.Fatal("want: 2 written, then 1 and 2 again refused")
	}

	versions := rand.Perm(60)
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Go(func() {
			for _, v := range versions[g*10 : g*10+10] {
				if _, err := w.Put(ctx, subj, snapshot.RecordMsgID("o", "Deals", "d1", int64(v)), int64(v), deleted(int64(v))); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	st, err := js.Stream(ctx, snapshot.StreamRecords)
	if err != nil {
		t.Fatal(err)
	}
	last, err := st.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := strconv.Atoi(last.Header.Get(snapshot.HeaderVersion)); v != 59 {
		t.Fatalf("last version %d, want 59", v)
	}
	info, _ := st.Info(ctx)
	if info.State.Msgs != 1 {
		t.Fatalf("%d messages kept, want 1", info.State.Msgs)
	}
}

// TestLateVersionOneNeverOverwritesDelete: a record's version-1 upsert
// (written blind, see Put), its version-2 delete and a late version-1
// upsert, written at the same time in every round: the tombstone is what
// stays, whether the late upsert's msg id is caught by the duplicate
// window or not.
func TestLateVersionOneNeverOverwritesDelete(t *testing.T) {
	t.Parallel()
	js, w := streams(t)
	ctx := testkit.Context(t)
	st, err := js.Stream(ctx, snapshot.StreamRecords)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 40 {
		id := fmt.Sprintf("r%d", round)
		subj := snapshot.RecordSubject("o", "Deals", id)
		up := &crmv1.RecordUpserted{Envelope: &commonv1.Envelope{OrgId: "o"}, Record: &crmv1.Record{Module: "Deals", Id: id, Version: 1}}
		del := &crmv1.RecordDeleted{Envelope: &commonv1.Envelope{OrgId: "o"}, Module: "Deals", RecordId: id, Version: 2}
		lateID := snapshot.RecordMsgID("o", "Deals", id, 1)
		if round%2 == 1 {
			lateID += "-past-the-duplicate-window"
		}
		var wg sync.WaitGroup
		for _, put := range rand.Perm(3) {
			wg.Go(func() {
				var err error
				switch put {
				case 0:
					_, err = w.Put(ctx, subj, snapshot.RecordMsgID("o", "Deals", id, 1), 1, up)
				case 1:
					_, err = w.Put(ctx, subj, snapshot.RecordMsgID("o", "Deals", id, 2), 2, del)
				case 2:
					_, err = w.Put(ctx, subj, lateID, 1, up)
				}
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		last, err := st.GetLastMsgForSubject(ctx, subj)
		if err != nil {
			t.Fatal(err)
		}
		if v := last.Header.Get(snapshot.HeaderVersion); v != "2" {
			t.Fatalf("round %d: %s holds version %s, want the version-2 tombstone", round, subj, v)
		}
	}
}

// TestFollowReplaysThenFollows: the last message of every subject first,
// caught up, then new messages as they come.
func TestFollowReplaysThenFollows(t *testing.T) {
	t.Parallel()
	js, w := streams(t)
	ctx := testkit.Context(t)
	for i := range 30 {
		id := fmt.Sprintf("d%d", i%10)
		v := int64(i)
		if _, err := w.Put(ctx, snapshot.RecordSubject("o", "Deals", id), snapshot.RecordMsgID("o", "Deals", id, v), v, deleted(v)); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var got []snapshot.Msg
	f, err := snapshot.Follow(ctx, js, snapshot.StreamRecords, testkit.Logger(t), func(m snapshot.Msg) {
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Stop(ctx) }()
	testkit.Closed(t, f.CaughtUp(), testkit.DefaultTimeout, "caught up")
	mu.Lock()
	if len(got) != 10 || got[0].Type != "crmslack.crm.v1.RecordDeleted" {
		t.Fatalf("replayed %d messages (%v), want the last of each of 10 subjects", len(got), got)
	}
	mu.Unlock()
	if _, err := w.Put(ctx, snapshot.RecordSubject("o", "Deals", "new"), "x", 1, deleted(1)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 11 })
}

func TestFollowEmptyStreamIsCaughtUp(t *testing.T) {
	t.Parallel()
	js, _ := streams(t)
	f, err := snapshot.Follow(testkit.Context(t), js, snapshot.StreamUsers, testkit.Logger(t), func(snapshot.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Stop(testkit.Context(t)) }()
	testkit.Closed(t, f.CaughtUp(), time.Second, "an empty stream caught up at once")
}

func TestTokenKeepsSubjectsApart(t *testing.T) {
	t.Parallel()
	seen := map[string]string{}
	for _, id := range []string{"1234", "a.b", "a b", "~a", "*", ">", "", "é", "a_b-C", "YS5i", "~YS5i"} {
		tok := snapshot.Token(id)
		if prev, dup := seen[tok]; dup {
			t.Errorf("%q and %q share token %q", prev, id, tok)
		}
		seen[tok] = id
		if _, err := jetstreamToken(tok); err != nil {
			t.Errorf("Token(%q) = %q: %v", id, tok, err)
		}
	}
	if snapshot.Token("1234") != "1234" {
		t.Error("a plain id is not kept readable")
	}
}

func jetstreamToken(s string) (string, error) {
	for _, r := range s {
		if r == '.' || r == '*' || r == '>' || r <= ' ' || r >= 0x7f {
			return "", fmt.Errorf("bad rune %q", r)
		}
	}
	if s == "" {
		return "", fmt.Errorf("empty")
	}
	return s, nil
}

// TestPutImportWritesABatchOnce: a batch is written under its event id
// once; the same batch again (a redelivery, the same rows imported again)
// writes nothing.
func TestPutImportWritesABatchOnce(t *testing.T) {
	t.Parallel()
	js, w := streams(t)
	ctx := testkit.Context(t)
	for i, want := range []bool{true, false} {
		wrote, err := w.PutImport(ctx, "o", "Deals", "crmctl-import-1", "hash", []byte("batch"))
		if err != nil || wrote != want {
			t.Fatalf("write %d: wrote %v, %v; want %v", i+1, wrote, err, want)
		}
	}
	st, err := js.Stream(ctx, snapshot.StreamRecords)
	if err != nil {
		t.Fatal(err)
	}
	m, err := st.GetLastMsgForSubject(ctx, snapshot.ImportSubject("o", "Deals", "crmctl-import-1"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 || m.Header.Get(snapshot.HeaderSchema) != "hash" || m.Header.Get(bus.HeaderType) != snapshot.TypeImported {
		t.Errorf("%d messages; the batch's headers %v", info.State.Msgs, m.Header)
	}
}

// TestKeepForeverDropsATombstonesTTL: a tombstone an earlier build wrote
// with a TTL is followed as expiring and rewritten without it, the same
// snapshot otherwise; a rewrite of a subject that moved on writes nothing.
func TestKeepForeverDropsATombstonesTTL(t *testing.T) {
	t.Parallel()
	js, w := streams(t)
	ctx := testkit.Context(t)
	subj := snapshot.RecordSubject("o", "Deals", "d1")
	data, err := proto.Marshal(deleted(3))
	if err != nil {
		t.Fatal(err)
	}
	old := &nats.Msg{Subject: subj, Data: data, Header: nats.Header{}}
	old.Header.Set(bus.HeaderType, string(proto.MessageName(deleted(3))))
	old.Header.Set(snapshot.HeaderVersion, "3")
	old.Header.Set(jetstream.MsgIDHeader, snapshot.RecordMsgID("o", "Deals", "d1", 3))
	ack, err := js.PublishMsg(ctx, old, jetstream.WithMsgTTL(30*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}

	got := make(chan snapshot.Msg, 1)
	f, err := snapshot.Follow(ctx, js, snapshot.StreamRecords, testkit.Logger(t), func(m snapshot.Msg) { got <- m })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Stop(testkit.Context(t)) })
	if m := <-got; !m.Expires || m.Seq != ack.Sequence {
		t.Fatalf("followed %+v; want the tombstone at %d, expiring", m, ack.Sequence)
	}

	if kept, err := w.KeepForever(ctx, subj, ack.Sequence); err != nil || !kept {
		t.Fatalf("KeepForever: %v, %v", kept, err)
	}
	st, err := js.Stream(ctx, snapshot.StreamRecords)
	if err != nil {
		t.Fatal(err)
	}
	last, err := st.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		t.Fatal(err)
	}
	if last.Header.Get(jetstream.MsgTTLHeader) != "" || string(last.Data) != string(data) ||
		last.Header.Get(snapshot.HeaderVersion) != "3" || last.Header.Get(bus.HeaderType) != old.Header.Get(bus.HeaderType) {
		t.Fatalf("rewritten: %v %x; want the tombstone without its TTL", last.Header, last.Data)
	}
	if kept, err := w.KeepForever(ctx, subj, ack.Sequence); err != nil || kept {
		t.Fatalf("a second KeepForever of the old sequence: %v, %v; want nothing written", kept, err)
	}
}
