// Command local runs the whole of crmslack in one process for development:
// an embedded nats-server with JetStream, an embedded MongoDB-wire server
// (FerretDB on SQLite), the Slack stand-in, and every service, each started
// through its exported Run. With NATS_URL, MONGODB_URI or SLACK_API_URL set,
// the matching embedded part is not started and the services use the real
// one instead. Ctrl-C stops everything and exits 0.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/crmslack/crmslack/libs/foreground"
)

func main() {
	restore := foreground.Take()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Environ(), os.Stdout, nil); err != nil {
		restore()
		fmt.Fprintln(os.Stderr, "local:", err)
		os.Exit(1)
	}
	restore()
}
