package snapshot_test

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/services/query/internal/snapshot"
)

// TestFollowParallelAppliesInStreamOrder: with prepare finishing in any
// order (each sleeps at random), apply sees every message in stream
// order, each with what prepare made of it; caught up closes only once the
// stream's last message as of the start is applied; and every subject
// ends with its last message, replayed or live.
// (The stream keeps one message per subject, so a replay holds 20.)
func TestFollowParallelAppliesInStreamOrder(t *testing.T) {
	t.Parallel()
	js, _ := streams(t)
	ctx := testkit.Context(t)
	const subjects, perSubject = 20, 50
	publish := func(round int) {
		t.Helper()
		var futures []jetstream.PubAckFuture
		for i := range subjects * perSubject {
			m := nats.NewMsg(snapshot.RecordSubject("o", "Deals", fmt.Sprintf("d%d", i%subjects)))
			m.Header.Set(bus.HeaderType, "crmslack.crm.v1.RecordDeleted")
			m.Data = []byte(strconv.Itoa(round*subjects*perSubject + i))
			f, err := js.PublishMsgAsync(m)
			if err != nil {
				t.Fatal(err)
			}
			futures = append(futures, f)
		}
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				t.Fatal(err)
			}
		}
	}
	publish(0)
	s, err := js.Stream(ctx, snapshot.StreamRecords)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	target := info.State.LastSeq

	var mu sync.Mutex
	var lastSeq uint64
	last := map[string]int{}
	var misordered []string
	// progress is what f.Progress said as each replayed message was applied.
	var following atomic.Pointer[snapshot.Following]
	var progress []float64
	f, err := snapshot.FollowParallel(ctx, js, snapshot.StreamRecords, testkit.Logger(t),
		func(m snapshot.Msg) int {
			time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
			n, err := strconv.Atoi(string(m.Data))
			if err != nil {
				return -1
			}
			return n
		},
		func(m snapshot.Msg, n int) {
			mu.Lock()
			defer mu.Unlock()
			if m.Seq <= lastSeq || n != int(m.Seq)-1 {
				misordered = append(misordered, fmt.Sprintf("seq %d (prepared %d) after %d", m.Seq, n, lastSeq))
			}
			lastSeq = m.Seq
			last[m.Subject] = n
			if f := following.Load(); f != nil && m.Seq <= target {
				progress = append(progress, f.Progress())
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	following.Store(f)
	defer func() { _ = f.Stop(ctx) }()
	testkit.Closed(t, f.CaughtUp(), testkit.DefaultTimeout, "caught up")
	mu.Lock()
	if lastSeq != target || len(last) != subjects {
		t.Fatalf("caught up with seq %d applied over %d subjects, want %d over %d", lastSeq, len(last), target, subjects)
	}
	// The replay is the stream's 20 messages: the k-th applied saw k-1 of
	// them done (those before the pointer was stored saw nothing).
	for i, p := range progress {
		k := subjects - len(progress) + i
		if want := float64(k) / subjects; p != want {
			t.Errorf("progress as replayed message %d was applied: %v, want %v", k+1, p, want)
		}
	}
	if p := f.Progress(); p != 1 {
		t.Errorf("progress once caught up: %v, want 1", p)
	}
	mu.Unlock()

	publish(1)
	testkit.Eventually(t, testkit.DefaultTimeout, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return lastSeq == 2*subjects*perSubject
	})
	mu.Lock()
	defer mu.Unlock()
	if len(misordered) > 0 {
		t.Fatalf("applied out of stream order: %v", misordered)
	}
	for i := range subjects {
		subj := snapshot.RecordSubject("o", "Deals", fmt.Sprintf("d%d", i))
		if want := 2*subjects*perSubject - subjects + i; last[subj] != want {
			t.Errorf("%s ends with %d, want %d", subj, last[subj], want)
		}
	}
	// Live messages a later one of their subject replaced before delivery
	// are skipped (the stream keeps one per subject), so fewer may come.
	if got := f.Applied(); got < 2*subjects || got > subjects+subjects*perSubject {
		t.Errorf("applied %d, want %d replayed and up to %d live", got, subjects, subjects*perSubject)
	}
}

// TestFollowParallelStops: Stop ends the stages, on an idle stream too.
func TestFollowParallelStops(t *testing.T) {
	t.Parallel()
	js, _ := streams(t)
	ctx := testkit.Context(t)
	f, err := snapshot.FollowParallel(ctx, js, snapshot.StreamUsers, testkit.Logger(t),
		func(snapshot.Msg) struct{} { return struct{}{} }, func(snapshot.Msg, struct{}) {})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Closed(t, f.CaughtUp(), time.Second, "an empty stream caught up at once")
	if p := f.Progress(); p != 1 {
		t.Errorf("progress on an empty stream: %v, want 1", p)
	}
	if err := f.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}
