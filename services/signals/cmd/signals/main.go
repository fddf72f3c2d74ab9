// Command signals runs the SalesSignals service. Configuration comes from
// the environment; see docs/configuration.md.
package main

import (
	"github.com/crmslack/crmslack/libs/lifecycle"
	"github.com/crmslack/crmslack/services/signals"
)

func main() {
	lifecycle.Main(lifecycle.Entry[signals.Config]{Name: "signals", Load: signals.ConfigFromEnv, Run: signals.Run})
}
