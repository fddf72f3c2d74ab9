package bus_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/bus"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

// BenchmarkPublishToHandle measures the bus end to end on an embedded
// nats-server with file storage: 512 B events published asynchronously
// (PublishBatch) to one durable consumer. Each op is one event published and
// handled. It reports msgs/s and the publish→handle latency (envelope
// occurred_at, set just before publishing, to handler entry) as p50-ms and
// p99-ms.
//
//   - max-rate: two publishers as fast as acks allow, chunks of 128; the
//     latency is mostly queueing behind the backlog.
//   - rate=N: one publisher offering N msgs/s in 1 ms steps, the shape of the
//     measured-ceilings table; the latency is the bus's own.
//
// Run: go test -run '^$' -bench PublishToHandle -count 6 ./bus | benchstat -
func BenchmarkPublishToHandle(b *testing.B) {
	b.Run("max-rate/concurrency=1", func(b *testing.B) { benchPublishToHandle(b, 1, 0) })
	b.Run("max-rate/concurrency=4", func(b *testing.B) { benchPublishToHandle(b, 4, 0) })
	b.Run("rate=5000", func(b *testing.B) { benchPublishToHandle(b, 1, 5000) })
	b.Run("rate=20000", func(b *testing.B) { benchPublishToHandle(b, 1, 20000) })
}

const (
	benchChunk      = 128
	benchPublishers = 2
	benchPayload    = 512
)

// benchPublishToHandle publishes b.N events, at rate msgs/s or (rate 0) as
// fast as possible, and waits until the handler has seen them all.
func benchPublishToHandle(b *testing.B, concurrency, rate int) {
	e := newEnv(b)
	n := b.N
	lat := make([]time.Duration, n)
	var handled atomic.Int64
	all := make(chan struct{})
	subscribe(b, e.bus, bus.ConsumerSpec{Stream: e.stream, Durable: "bench", Concurrency: concurrency},
		func(ctx context.Context, ev *crmv1.RecordUpserted) error {
			d := time.Since(ev.GetEnvelope().GetOccurredAt().AsTime())
			if i := handled.Add(1); i <= int64(n) {
				lat[i-1] = d
				if i == int64(n) {
					close(all)
				}
			}
			return nil
		})
	pad := strings.Repeat("x", benchPayload-proto.Size(benchEvent(0, "")))
	if got := proto.Size(benchEvent(0, pad)); got < benchPayload-8 || got > benchPayload+8 {
		b.Fatalf("event is %d bytes, want ~%d", got, benchPayload)
	}
	publishRange := func(from, to int) error {
		items := make([]bus.Published, 0, to-from)
		for i := from; i < to; i++ {
			items = append(items, bus.Published{Subject: e.subject(), Event: benchEvent(i, pad)})
		}
		return e.bus.PublishBatch(context.Background(), items)
	}

	b.SetBytes(benchPayload)
	b.ResetTimer()
	start := time.Now()
	if rate == 0 {
		errs := make(chan error, benchPublishers)
		var next atomic.Int64
		for range benchPublishers {
			go func() {
				for {
					from := int(next.Add(benchChunk)) - benchChunk
					if from >= n {
						errs <- nil
						return
					}
					if err := publishRange(from, min(from+benchChunk, n)); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		for range benchPublishers {
			if err := <-errs; err != nil {
				b.Fatalf("PublishBatch: %v", err)
			}
		}
	} else {
		for sent := 0; sent < n; {
			due := min(n, int(time.Since(start).Seconds()*float64(rate))+1)
			if due > sent {
				if err := publishRange(sent, due); err != nil {
					b.Fatalf("PublishBatch: %v", err)
				}
				sent = due
			}
			time.Sleep(time.Millisecond)
		}
	}
	select {
	case <-all:
	case <-time.After(time.Minute):
		b.Fatalf("only %d of %d handled", handled.Load(), n)
	}
	elapsed := time.Since(start)
	b.StopTimer()

	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(int(p*float64(n)), n-1)]) / float64(time.Millisecond)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

func benchEvent(i int, pad string) *crmv1.RecordUpserted {
	ev := newEvent(fmt.Sprintf("bench-%09d", i))
	ev.Envelope.OccurredAt = timestamppb.Now()
	ev.Record.Fields = map[string]*crmv1.FieldValue{
		"Description": {Kind: &crmv1.FieldValue_Text{Text: pad}},
	}
	return ev
}
