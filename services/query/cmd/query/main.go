// Command query runs the slash-command service. Configuration comes from
// the environment; see docs/configuration.md.
package main

import (
	"os"
	"runtime/debug"

	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/libs/lifecycle"
	"github.com/crmslack/crmslack/services/query"
)

// gcPercent is the query process's GOGC unless the environment sets one.
// Its heap is nearly all the long-lived projection (a million records are
// ~750 MB), which Go's default of 100 would let double before collecting;
// 25 bounds the heap to 1.25× the projection for a few more, cheap,
// collections (answers allocate little).
const gcPercent = 25

// rebuildGCPercent is GOGC while the projection is rebuilt at start-up:
// the heap grows from nothing to the whole projection then, and at 25 the
// collector would mark the growing heap every quarter of the way, spending
// a third of the rebuild's CPU. Measured at a million records on 2 idle
// cores: 50 was ready in 10.8 s with RSS peaking at 875 MB, 75 in 8.5 s at
// 977 MB, 100 in 7.4 s at 1,066 MB (over 1 GB); 75 keeps the restart under
// 10 s and the process under 1 GB. Once rebuilt, what the rebuild left over
// is given back to the system and GOGC is as before.
const rebuildGCPercent = 75

// main is lifecycle.Main: configuration read and validated (exit 2 when
// wrong), logs to stderr, Run until SIGINT or SIGTERM (exit 1 on failure,
// 0 on a clean stop).
func main() {
	_, set := os.LookupEnv("GOGC")
	if !set {
		debug.SetGCPercent(gcPercent)
	}
	load := func(l *envconfig.Loader) query.Config {
		cfg := query.ConfigFromEnv(l)
		if !set {
			cfg.Rebuilding = func() func() {
				before := debug.SetGCPercent(rebuildGCPercent)
				return func() {
					debug.SetGCPercent(before)
					debug.FreeOSMemory()
				}
			}
		}
		return cfg
	}
	lifecycle.Main(lifecycle.Entry[query.Config]{Name: "query", Load: load, Run: query.Run})
}
