// Command reminders runs the reminders service.
package main

import (
	"github.com/crmslack/crmslack/libs/lifecycle"

	"github.com/crmslack/crmslack/services/reminders"
)

func main() {
	lifecycle.Main(lifecycle.Entry[reminders.Config]{Name: "reminders", Load: reminders.ConfigFromEnv, Run: reminders.Run})
}
