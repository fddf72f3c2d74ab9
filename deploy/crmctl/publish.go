package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

func publishCmd(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	natsURL := fs.String("nats", envOr("NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL")
	pkiDir := fs.String("pki", defaultPKI(), "the local runner's NATS passwords: CRM events as crm-<org> (else <USER>_NATS_PASSWORD), others as the operator (NATS_USER/NATS_PASSWORD, else the development toolbox user)")
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

	// Each event as the user that may publish it (natslogin.go), on the
	// streams the running stack made.
	pubs := newPublishers(*natsURL, *pkiDir, "crmctl")
	defer pubs.close()
	var published, duplicates int
	for _, ev := range events {
		b, err := pubs.forSubject(ctx, ev.Subject)
		if err != nil {
			return fmt.Errorf("%s: %w (%d published before it; publishing again is safe)", ev.Where, err, published+duplicates)
		}
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
