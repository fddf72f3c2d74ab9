// Command sharing runs the sharing service. Configuration comes from the
// environment; see docs/configuration.md.
package main

import (
	"github.com/crmslack/crmslack/libs/lifecycle"
	"github.com/crmslack/crmslack/services/sharing"
)

func main() {
	lifecycle.Main(lifecycle.Entry[sharing.Config]{Name: "sharing", Load: sharing.ConfigFromEnv, Run: sharing.Run})
}
