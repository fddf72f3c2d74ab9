// Command console runs the admin web console. Configuration comes from the
// environment; see docs/configuration.md and docs/console.md.
package main

import (
	"github.com/crmslack/crmslack/libs/lifecycle"
	"github.com/crmslack/crmslack/services/console"
)

func main() {
	lifecycle.Main(lifecycle.Entry[console.Config]{Name: "console", Load: console.ConfigFromEnv, Run: console.Run})
}
