// Command query runs the slash-command service. Configuration comes from
// the environment; see docs/configuration.md.
package main

import (
	"github.com/crmslack/crmslack/libs/lifecycle"
	"github.com/crmslack/crmslack/services/query"
)

// main is lifecycle.Main: configuration read and validated (exit 2 when
// wrong), logs to stderr, Run until SIGINT or SIGTERM (exit 1 on failure,
// 0 on a clean stop).
func main() {
	lifecycle.Main(lifecycle.Entry[query.Config]{Name: "query", Load: query.ConfigFromEnv, Run: query.Run})
}
