// Command delivery runs the Slack egress. Configuration comes from the
// environment; see docs/configuration.md.
package main

import (
	"github.com/crmslack/crmslack/libs/lifecycle"
	"github.com/crmslack/crmslack/services/delivery"
)

func main() {
	lifecycle.Main(lifecycle.Entry[delivery.Config]{Name: "delivery", Load: delivery.ConfigFromEnv, Run: delivery.Run})
}
