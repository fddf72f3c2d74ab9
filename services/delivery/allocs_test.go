package delivery_test

import (
	"bytes"
	"fmt"
	"math"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
)

// harnessFrames are the function-name prefixes of the parts the bench runs
// in its process that in production are other processes: nats-server,
// FerretDB with its SQLite, the Slack stand-in and its HTTP server side, the
// team registry stand-in, and the bench's own publishing of the commands.
// An allocation with one of these in its stack is the harness's; every other
// one is the egress process's (delivery and its clients: nats.go, the mongo
// driver, slack-go, net/http's client, gRPC's client).
var harnessFrames = []string{
	"github.com/nats-io/nats-server/",
	"github.com/FerretDB/",
	"modernc.org/",
	"github.com/crmslack/crmslack/libs/slackstandin",
	"github.com/crmslack/crmslack/libs/localmongo",
	"github.com/crmslack/crmslack/libs/localnats",
	"github.com/crmslack/crmslack/libs/testkit",
	"github.com/crmslack/crmslack/services/delivery_test.",
	"net/http.(*conn).",
	"net/http.(*response).",
	"net/http.(*chunkWriter).",
	"net/http.(*connReader).",
	"net/http.(*Server).",
	"net/http.readRequest",
	"net/http/httptest.",
	"google.golang.org/grpc/internal/transport.(*http2Server).",
	"google.golang.org/grpc.(*Server).",
}

// egressProfileRate is the heap profile's sampling rate while a bench
// measures: one allocation sampled in every 32 KB allocated, tens of
// thousands of samples a run.
const egressProfileRate = 32 << 10

// allocSnapshot is the heap profile's cumulative allocations per stack
// (the pcs, as the profile prints them).
type allocSnapshot map[string]allocRecord

type allocRecord struct {
	objects, bytes int64
	stack          []uintptr
}

// takeAllocs reads the heap profile. runtime.MemProfile cuts stacks at 32
// frames, which leaves the harness's deep stacks (FerretDB's, the
// stand-in's JSON) without the frame that says whose they are; the text
// form of the profile has them whole. The profile is as of the last
// completed collection: the caller collects first (liveHeap does).
func takeAllocs(tb testing.TB) allocSnapshot {
	tb.Helper()
	var buf bytes.Buffer
	if err := pprof.Lookup("allocs").WriteTo(&buf, 1); err != nil {
		tb.Fatal(err)
	}
	s := allocSnapshot{}
	for line := range strings.Lines(buf.String()) {
		// "<inuse objects>: <inuse bytes> [<objects>: <bytes>] @ <pc> <pc> ..."
		counts, pcs, ok := strings.Cut(strings.TrimSpace(line), " @ ")
		if !ok || strings.HasPrefix(counts, "heap profile") {
			continue
		}
		var inuseN, inuseB, n, b int64
		if _, err := fmt.Sscanf(counts, "%d: %d [%d: %d]", &inuseN, &inuseB, &n, &b); err != nil {
			tb.Fatalf("heap profile line %q: %v", line, err)
		}
		r := s[pcs]
		if r.stack == nil {
			for f := range strings.FieldsSeq(pcs) {
				pc, err := strconv.ParseUint(f, 0, 64)
				if err != nil {
					tb.Fatalf("heap profile line %q: %v", line, err)
				}
				r.stack = append(r.stack, uintptr(pc))
			}
		}
		r.objects += n
		r.bytes += b
		s[pcs] = r
	}
	return s
}

// egressShare is the share of the bytes and of the objects allocated since
// before that the egress process's code allocated, from the samples of the
// heap profile (scaled as pprof does, for the sampling rate).
func egressShare(before, after allocSnapshot) (bytes, objects float64) {
	var all, egress [2]float64
	harness := map[uintptr]bool{}
	for stk, r := range after {
		b0 := before[stk]
		c, sz := scaleSample(r.objects-b0.objects, r.bytes-b0.bytes)
		if c == 0 {
			continue
		}
		all[0] += sz
		all[1] += c
		if !inHarness(r.stack, harness) {
			egress[0] += sz
			egress[1] += c
		}
	}
	if all[0] == 0 || all[1] == 0 {
		return 0, 0
	}
	return egress[0] / all[0], egress[1] / all[1]
}

// inHarness reports whether a frame of stk is in a harness part; memo keeps
// each pc's answer.
func inHarness(stk []uintptr, memo map[uintptr]bool) bool {
	for _, pc := range stk {
		h, ok := memo[pc]
		if !ok {
			// One pc is several frames where calls were inlined.
			fs := runtime.CallersFrames([]uintptr{pc})
			for {
				f, more := fs.Next()
				h = h || hasHarnessPrefix(f.Function)
				if !more {
					break
				}
			}
			memo[pc] = h
		}
		if h {
			return true
		}
	}
	return false
}

func hasHarnessPrefix(name string) bool {
	for _, p := range harnessFrames {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// scaleSample undoes the heap profile's sampling for count objects of size
// bytes in all (runtime/pprof's scaleHeapSample).
func scaleSample(count, size int64) (float64, float64) {
	rate := int64(runtime.MemProfileRate)
	if count <= 0 || size <= 0 {
		return 0, 0
	}
	if rate <= 1 {
		return float64(count), float64(size)
	}
	avg := float64(size) / float64(count)
	scale := 1 / (1 - math.Exp(-avg/float64(rate)))
	return float64(count) * scale, float64(size) * scale
}

// The bench's own allocations are the harness's: a window in which the
// test itself allocates 64 MB must attribute nearly nothing to the egress.
// Checked on the bytes: a small object the profile samples stands for
// hundreds (its scale), so a few allocations of some goroutine still
// winding down (a fetch, a keep-alive) can weigh more than the test's
// 1,024 objects in the share of objects, and did under CI's load.
func TestEgressShareLeavesTheHarnessOut(t *testing.T) {
	rate := runtime.MemProfileRate
	runtime.MemProfileRate = egressProfileRate
	t.Cleanup(func() { runtime.MemProfileRate = rate })
	runtime.GC()
	before := takeAllocs(t)
	var keep [][]byte
	for range 1024 {
		keep = append(keep, make([]byte, 64<<10))
	}
	runtime.GC()
	shareB, shareN := egressShare(before, takeAllocs(t))
	if len(keep) != 1024 || shareB > 0.05 {
		t.Errorf("egress share of the test's own allocations: %.3f of the bytes (%.3f of the objects); want ~0", shareB, shareN)
	}
}
