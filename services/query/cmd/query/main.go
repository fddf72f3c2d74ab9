// Command query runs the slash-command service. Configuration comes from
// the environment; see docs/configuration.md.
package main

import (
	"os"
	"runtime/debug"

	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/libs/lifecycle"
	"github.com/crmslack/crmslack/services/query"
	"github.com/crmslack/crmslack/services/query/internal/rebuildmem"
)

// gcPercent is the query process's GOGC unless the environment sets one.
// Its heap is nearly all the long-lived projection (a million records are
// ~750 MB), which Go's default of 100 would let double before collecting;
// 25 bounds the heap to 1.25× the projection for a few more, cheap,
// collections (answers allocate little).
const gcPercent = 25

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
			// The heap grows from nothing to the whole projection while
			// rebuilding, which GOGC 25 would mark every quarter of the
			// way; rebuildmem bounds it by a memory limit instead.
			cfg.Rebuilding = rebuildmem.Start
		}
		return cfg
	}
	lifecycle.Main(lifecycle.Entry[query.Config]{Name: "query", Load: load, Run: query.Run})
}
