// Command crmctl is the command line of crmslack for people and scripts:
// publish CRM events from JSON or NDJSON files, and call any gRPC API of the
// services.
//
//	crmctl publish [-nats URL] [-dry-run] FILE...     events, one per line or a JSON array
//	crmctl import -org ORG -module M [-schema F] FILE  records from a CRM export (CSV or NDJSON)
//	crmctl call [-addr HOST:PORT] METHOD [JSON]        e.g. TeamRegistryService/ListTeams '{"orgId":"o1"}'
//	crmctl methods                                     every gRPC method it knows
//	crmctl types                                       every event type it can publish
//	crmctl signal -org ORG -channel C -kind K -owner EMAIL -record MODULE/ID  publish a SalesSignal
//	crmctl slack zcrm|click ...                        act as a Slack user through the Slack stand-in
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const usage = `usage:
  crmctl publish [-nats URL] [-dry-run] FILE...   publish CRM events (JSON or NDJSON; - for stdin)
  crmctl import -org ORG -module MODULE [-schema schema.json] FILE.csv|FILE.ndjson
                                                   backfill records from a CRM export (crmctl import -h)
  crmctl call [-addr HOST:PORT] METHOD [JSON]      call a gRPC method (JSON request, or stdin)
  crmctl methods                                   list gRPC methods
  crmctl types                                     list event types publish accepts
  crmctl signal -org ORG [-channel call] [-kind missed] -owner EMAIL -record MODULE/ID [-from NAME] [-phone P] [-summary S] [-url U]
                                                   publish a SalesSignal as the CRM would (crmctl signal -h)
  crmctl slack zcrm [-team T] -channel C -user U TEXT...
                                                   type a /zcrm command in the Slack stand-in (crmctl slack -h)
  crmctl slack click [-team T] -channel C -user U VALUE
                                                   click a Share button of an answer
`

// run is main without the process: tests call it.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "publish":
		err = publishCmd(ctx, args[1:], stdin, stdout)
	case "import":
		err = importCmd(ctx, args[1:], stdin, stdout)
	case "call":
		err = callCmd(ctx, args[1:], stdin, stdout)
	case "methods":
		err = methodsCmd(stdout)
	case "types":
		err = typesCmd(stdout)
	case "signal":
		err = signalCmd(ctx, args[1:], stdout)
	case "slack":
		err = slackCmd(ctx, args[1:], stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "crmctl: unknown command %q\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "crmctl %s: %v\n", args[0], err)
		return 1
	}
	return 0
}
