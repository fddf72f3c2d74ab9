// Command workflows runs the workflow actions service. Configuration comes
// from the environment; see docs/configuration.md.
package main

import (
	"github.com/crmslack/crmslack/libs/lifecycle"
	"github.com/crmslack/crmslack/services/workflows"
)

func main() {
	lifecycle.Main(lifecycle.Entry[workflows.Config]{Name: "workflows", Load: workflows.ConfigFromEnv, Run: workflows.Run})
}
