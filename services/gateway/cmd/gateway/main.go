// Command gateway runs the gateway. Configuration comes from the
// environment; see docs/configuration.md.
package main

import (
	"github.com/crmslack/crmslack/libs/lifecycle"
	"github.com/crmslack/crmslack/services/gateway"
)

func main() {
	lifecycle.Main(lifecycle.Entry[gateway.Config]{Name: "gateway", Load: gateway.ConfigFromEnv, Run: gateway.Run})
}
