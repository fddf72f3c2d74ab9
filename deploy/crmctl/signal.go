package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

// signalCmd publishes one SalesSignal, as the CRM would when a customer
// reaches out: crmctl signal -org acme -channel call -kind missed
// -owner alice@acme.example -record Contacts/c-1 -from "John Smith".
func signalCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("signal", flag.ContinueOnError)
	natsURL := fs.String("nats", envOr("NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL")
	pkiDir := fs.String("pki", defaultPKI(), "the local runner's NATS passwords: logs in as the org's CRM user crm-<org> (else <USER>_NATS_PASSWORD)")
	org := fs.String("org", "", "CRM org id (required)")
	channel := fs.String("channel", "call", "call, chat, email, support_ticket, social, website, survey or campaign")
	kind := fs.String("kind", "missed", "the signal type, e.g. missed (see docs/signals.md)")
	owner := fs.String("owner", "", "the record owner's email (required)")
	ownerID := fs.String("owner-id", "", "the record owner's CRM user id (default: the email)")
	record := fs.String("record", "", "the customer's record, MODULE/ID, e.g. Contacts/c-1 (required)")
	name := fs.String("name", "", "the record's display name")
	from := fs.String("from", "", "who reached out, e.g. John Smith")
	phone := fs.String("phone", "", "their phone number, for Call back")
	summary := fs.String("summary", "", "a short summary")
	link := fs.String("url", "", "link to the conversation, for Reply")
	id := fs.String("id", "", "event id (default: random; the same id again is a duplicate)")
	dryRun := fs.Bool("dry-run", false, "print the event and its subject, publish nothing")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ch, ok := crmv1.SignalChannel_value["SIGNAL_CHANNEL_"+strings.ToUpper(*channel)]
	var problems []string
	if !ok || ch == 0 {
		problems = append(problems, fmt.Sprintf("-channel %q is not a signal channel", *channel))
	}
	module, recID, _ := strings.Cut(*record, "/")
	if module == "" || recID == "" {
		problems = append(problems, "-record MODULE/ID is required")
	}
	if *org == "" {
		problems = append(problems, "-org is required")
	}
	if *owner == "" {
		problems = append(problems, "-owner EMAIL is required")
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	if *ownerID == "" {
		*ownerID = *owner
	}
	if *id == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		*id = "crmctl-signal-" + hex.EncodeToString(b)
	}
	ev := &crmv1.SalesSignal{
		Envelope: &commonv1.Envelope{EventId: *id, OrgId: *org, OccurredAt: timestamppb.New(time.Now()), SchemaVersion: 1, Producer: "crmctl"},
		SignalId: *id, Channel: crmv1.SignalChannel(ch), Kind: *kind,
		Record:      &commonv1.RecordRef{Module: module, Id: recID, Name: *name},
		RecordOwner: &commonv1.CrmUserRef{Id: *ownerID, Email: *owner},
		From:        *from, FromPhone: *phone, Summary: *summary, Url: *link,
	}
	subject, err := topology.SubjectFor(ev)
	if err != nil {
		return err
	}
	if *dryRun {
		b, err := protojson.Marshal(ev)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\t%s\n", subject, b)
		return err
	}
	// As the org's CRM user (natslogin.go), on the CRM stream the running
	// stack made.
	pubs := newPublishers(*natsURL, *pkiDir, "crmctl")
	defer pubs.close()
	b, err := pubs.forSubject(ctx, subject)
	if err != nil {
		return err
	}
	ack, err := b.Publish(ctx, subject, ev)
	if err != nil {
		return err
	}
	note := ""
	if ack.Duplicate {
		note = " (duplicate: already published)"
	}
	_, err = fmt.Fprintf(stdout, "published %s on %s%s\n", *id, subject, note)
	return err
}
