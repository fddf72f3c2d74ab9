package feed_test

import (
	"log/slog"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/testkit/harness"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	"github.com/crmslack/crmslack/services/query/internal/crmusers"
	"github.com/crmslack/crmslack/services/query/internal/feed"
	"github.com/crmslack/crmslack/services/query/internal/projection"
	"github.com/crmslack/crmslack/services/query/internal/rebuildmem"
	"github.com/crmslack/crmslack/services/query/internal/seedset"
	"github.com/crmslack/crmslack/services/query/internal/snapshot"
)

// BenchmarkRebuild: a restart's rebuild of 100,000 generated leads
// (FEED_BENCH_RECORDS to change it) from
// the records snapshot stream, as the persister stores them (one schema
// snapshot, each record without its schema): from FollowParallel, as the
// query binary follows, to caught up,
// in snapshots per second, with the live heap after it and the heap's
// high-water mark during it (peak-heap/heap is the transient spike).
// Run with -benchtime=1x. The collector runs at GOGC 25 and the rebuild
// under rebuildmem, as in the query binary.
func BenchmarkRebuild(b *testing.B) {
	n := harness.EnvInt(b, "FEED_BENCH_RECORDS", 100_000)
	defer debug.SetGCPercent(debug.SetGCPercent(25))
	// Not testkit.Context: a million snapshots take longer than its deadline.
	ctx := b.Context()
	js, w, _ := streams(b, ctx)
	schema := seedset.Schemas()["Leads"]
	data, hash, err := snapshot.EncodeSchema(schema)
	if err != nil {
		b.Fatal(err)
	}
	if err := w.PutSchema(ctx, seedset.Org, "Leads", hash, data); err != nil {
		b.Fatal(err)
	}
	var futures []jetstream.PubAckFuture
	wait := func() {
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				b.Fatal(err)
			}
		}
		futures = futures[:0]
	}
	for _, r := range seedset.GeneratedLeads(n) {
		ev := &crmv1.RecordUpserted{Envelope: &commonv1.Envelope{EventId: "e-" + r.GetId(), OrgId: seedset.Org}, Record: r}
		payload, err := proto.MarshalOptions{Deterministic: true}.Marshal(ev)
		if err != nil {
			b.Fatal(err)
		}
		m := &nats.Msg{Subject: snapshot.RecordSubject(seedset.Org, "Leads", r.GetId()), Data: payload, Header: nats.Header{}}
		m.Header.Set(bus.HeaderType, string(ev.ProtoReflect().Descriptor().FullName()))
		m.Header.Set(snapshot.HeaderVersion, "1")
		m.Header.Set(snapshot.HeaderSchema, hash)
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			b.Fatal(err)
		}
		if futures = append(futures, f); len(futures) == 1000 {
			wait()
		}
	}
	wait()

	for range b.N {
		m := feedMetrics(b)
		a := &feed.Applier{Records: projection.New(), Users: crmusers.New(), Log: slog.New(slog.DiscardHandler), Metrics: m, Schemas: w}
		runtime.GC()
		peak := watchHeap()
		cpu0 := cpuTime(b)
		start := time.Now()
		f, err := snapshot.FollowParallel(ctx, js, snapshot.StreamRecords, a.Log, a.PrepareRecord, a.ApplyRecord)
		if err != nil {
			b.Fatal(err)
		}
		rebuilt := rebuildmem.Start(f.Progress)
		<-f.CaughtUp()
		took := time.Since(start)
		cpu := cpuTime(b) - cpu0
		max := peak()
		rebuilt()
		_ = f.Stop(ctx)
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(float64(n)/took.Seconds(), "snapshots/s")
		// The process's CPU (NATS's included), which the machine's load
		// does not change as it does the rate.
		b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/snapshot")
		b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-MB")
		b.ReportMetric(float64(max)/(1<<20), "peak-heap-MB")
		b.ReportMetric(float64(max)/float64(ms.HeapAlloc), "peak/heap")
		runtime.KeepAlive(a)
	}
}

// cpuTime is the CPU time the process has used.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// watchHeap samples the live heap every 5 ms until the returned function
// is called, which returns the highest sample.
func watchHeap() func() uint64 {
	stop, done := make(chan struct{}), make(chan uint64)
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var high uint64
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			high = max(high, s[0].Value.Uint64())
			select {
			case <-stop:
				done <- high
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { close(stop); return <-done }
}
