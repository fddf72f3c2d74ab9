// Package rebuildmem bounds the query process's memory while it rebuilds
// its projection at start-up, with the runtime's soft memory limit instead
// of a fixed GOGC.
//
// During a rebuild the heap grows from nothing to the whole projection
// while the rebuild allocates about four times as much garbage as it
// keeps (each delivered message, its headers, decoding's scratch, columns
// outgrowing their arrays). A fixed GOGC trades one against the other over
// the whole rebuild: low, the collector marks the growing heap again every
// few percent of the way (a third of the rebuild's CPU at GOGC 50); high,
// the last stretch overshoots the finished projection by up to GOGC
// percent. Here the collector runs at a high GOGC (cheap while the heap is
// small) under a memory limit of [Factor] times the projection's expected
// size, extrapolated after each collection from the live heap and the
// share of the stream applied, so the high-water mark stays near Factor
// times what the rebuild leaves, whatever the data.
package rebuildmem

import (
	"math"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Factor is the memory limit over the expected projection: the aim is a
// transient of at most 1.5x the heap once rebuilt, and the limit is soft
// and counts only the Go runtime's memory, hence the margin.
const Factor = 1.2

// GCPercent is GOGC while rebuilding: the collector runs once the heap is
// four times what the last collection left, until the limit takes over.
const GCPercent = 300

// floor keeps collections apart should the extrapolation fall short (a
// stream whose later records are larger): the limit is never under the
// live heap by less than this share of it, on top of minHeadroom.
const (
	floor       = 0.15
	minHeadroom = 16 << 20
)

// poll is how often a new collection's live heap is looked for; each
// collection's limit needs to be set well before the next one.
const poll = 5 * time.Millisecond

// Start bounds memory for a rebuild whose progress (the share of the
// stream applied, 0 to 1) reports. The returned function ends it: the
// process's GOGC and memory limit are put back and what the rebuild left
// over is returned to the system.
func Start(progress func() float64) (done func()) {
	prevGC := debug.SetGCPercent(GCPercent)
	prevLimit := debug.SetMemoryLimit(-1)
	samples := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(samples)
	cycles, base := samples[0].Value.Uint64(), float64(samples[1].Value.Uint64())
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(poll)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			metrics.Read(samples)
			if c := samples[0].Value.Uint64(); c != cycles {
				cycles = c
				// Never above a limit the operator set (GOMEMLIMIT).
				debug.SetMemoryLimit(min(Limit(base, float64(samples[1].Value.Uint64()), progress()), prevLimit))
			}
		}
	}()
	return func() {
		close(stop)
		<-stopped
		debug.SetMemoryLimit(prevLimit)
		debug.SetGCPercent(prevGC)
		debug.FreeOSMemory()
	}
}

// Limit is the memory limit once a collection found live bytes live, with
// base of them there before the rebuild and a share progress of the
// stream applied: Factor times the live heap extrapolated to the whole
// stream, never closer to the live heap than floor and minHeadroom.
func Limit(base, live, progress float64) int64 {
	expected := math.Inf(1)
	if progress > 0 {
		expected = base + max(live-base, 0)/min(progress, 1)
	}
	limit := max(Factor*expected, live*(1+floor)+minHeadroom)
	if limit >= math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(limit)
}
