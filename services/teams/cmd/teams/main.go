// Command teams runs the team registry. Configuration comes from the
// environment; see docs/configuration.md.
package main

import (
	"github.com/crmslack/crmslack/libs/lifecycle"
	"github.com/crmslack/crmslack/services/teams"
)

func main() {
	lifecycle.Main(lifecycle.Entry[teams.Config]{Name: "teams", Load: teams.ConfigFromEnv, Run: teams.Run})
}
