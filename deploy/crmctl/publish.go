package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/topology"
)

func publishCmd(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	natsURL := fs.String("nats", envOr("NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL")
	pkiDir := fs.String("pki", defaultPKI(), "logs in with NATS_USER/NATS_PASSWORD, else as the development toolbox user of this PKI")
	dryRun := fs.Bool("dry-run", false, "validate and print subjects, publish nothing")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("name at least one file (- for stdin)")
	}
	// Decode and validate everything first: one bad line anywhere and
	// nothing is published, so no input is ever half-published silently.
	var events []event
	var errs []error
	now := time.Now()
	for _, name := range fs.Args() {
		var r io.Reader = stdin
		if name != "-" {
			f, err := os.Open(name)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			defer f.Close()
			r = f
		}
		evs, err := decodeEvents(name, r, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		events = append(events, evs...)
	}
	if len(errs) > 0 {
		return fmt.Errorf("nothing published:\n%w", errors.Join(errs...))
	}
	if *dryRun {
		for _, ev := range events {
			fmt.Fprintf(stdout, "%s\t%s\t%s\n", ev.Where, ev.Subject, ev.Msg.GetEnvelope().GetEventId())
		}
		fmt.Fprintf(stdout, "%d events valid\n", len(events))
		return nil
	}

	login, err := natsLogin(*pkiDir)
	if err != nil {
		return err
	}
	b, err := bus.Connect(ctx, bus.Config{URL: *natsURL, Name: "crmctl", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), NATSOptions: []nats.Option{login}})
	if err != nil {
		return err
	}
	defer b.Close()
	replicas, err := strconv.Atoi(envOr("NATS_REPLICAS", "1"))
	if err != nil || replicas < 1 {
		return fmt.Errorf("NATS_REPLICAS: %q is not a positive number", os.Getenv("NATS_REPLICAS"))
	}
	if err := b.EnsureStreams(ctx, topology.Select(topology.StreamOptions{Replicas: replicas}, topology.StreamCRM, topology.StreamIntegration)...); err != nil {
		return err
	}
	var published, duplicates int
	for _, ev := range events {
		ack, err := b.Publish(ctx, ev.Subject, ev.Msg)
		if err != nil {
			return fmt.Errorf("%s: %w (%d published before it; publishing again is safe)", ev.Where, err, published+duplicates)
		}
		if ack.Duplicate {
			duplicates++
		} else {
			published++
		}
	}
	fmt.Fprintf(stdout, "%d published, %d already published (duplicates dropped)\n", published, duplicates)
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
