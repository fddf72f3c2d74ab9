// Command query runs the slash-command service. Configuration comes from
// the environment; see docs/configuration.md.
package main

import (
	"os"
	"runtime/debug"

	"github.com/crmslack/crmslack/libs/lifecycle"
	"github.com/crmslack/crmslack/services/query"
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
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
	lifecycle.Main(lifecycle.Entry[query.Config]{Name: "query", Load: query.ConfigFromEnv, Run: query.Run})
}
