package projection_test

import (
	"runtime"
	"testing"
)

// BenchmarkHeapPerRecord: the live heap a store of 100,000 generated leads
// holds, per record, measured after a collection on both sides of the
// build. Run it with -benchtime=1x; more iterations only repeat the build.
func BenchmarkHeapPerRecord(b *testing.B) {
	const n = 100_000
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s := generated(b, n)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/n, "heap-B/record")
		runtime.KeepAlive(s)
	}
}
