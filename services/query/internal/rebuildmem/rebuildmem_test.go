package rebuildmem_test

import (
	"math"
	"runtime/debug"
	"testing"

	"github.com/crmslack/crmslack/services/query/internal/rebuildmem"
)

// TestLimit: Factor times the live heap extrapolated from the share
// applied (what was there before the rebuild not extrapolated), never
// closer to the live heap than the floor, no limit before any progress.
func TestLimit(t *testing.T) {
	const mb = 1 << 20
	for _, tc := range []struct {
		name                 string
		base, live, progress float64
		want                 int64
	}{
		{"half way", 20 * mb, 320 * mb, 0.5, int64(rebuildmem.Factor * 620 * mb)},
		{"done", 20 * mb, 620 * mb, 1, int64(rebuildmem.Factor * 620 * mb)},
		{"progress over 1 counts as 1", 20 * mb, 620 * mb, 1.2, int64(rebuildmem.Factor * 620 * mb)},
		{"nothing applied yet", 20 * mb, 30 * mb, 0, math.MaxInt64},
		{"small: the floor", 0, 100 * mb, 1, int64(100*mb*1.15 + 16*mb)},
		{"live under base: the floor", 20 * mb, 10 * mb, 0.5, int64(10*mb*1.15 + 16*mb)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := rebuildmem.Limit(tc.base, tc.live, tc.progress); got != tc.want {
				t.Errorf("Limit(%v, %v, %v) = %d MB, want %d MB", tc.base/mb, tc.live/mb, tc.progress, got/mb, tc.want/mb)
			}
		})
	}
}

// TestStartRestores: once done, the process's GOGC and memory limit are
// what they were.
func TestStartRestores(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(25))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(900 << 20))
	done := rebuildmem.Start(func() float64 { return 0.5 })
	if got := debug.SetGCPercent(rebuildmem.GCPercent); got != rebuildmem.GCPercent {
		t.Errorf("GOGC while rebuilding: %d, want %d", got, rebuildmem.GCPercent)
	}
	done()
	if got := debug.SetGCPercent(25); got != 25 {
		t.Errorf("GOGC after: %d, want 25", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 900<<20 {
		t.Errorf("memory limit after: %d, want %d", got, 900<<20)
	}
}
