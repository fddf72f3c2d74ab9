package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

// maxReported bounds the bad rows listed; the count is always given.
const maxReported = 50

// importEventID is the event id of a batch of imported record versions:
// derived from org, module and each record's id and version only, so
// importing the same file again publishes the same ids, which the CRM
// stream drops as duplicates inside its window and the query service's
// compare-by-version drops after it (also for a file cut differently).
func importEventID(org, module string, rows []row) string {
	h := sha256.New()
	h.Write([]byte(org + "\x00" + module))
	for _, r := range rows {
		h.Write([]byte("\x00" + r.ID + "\x00" + strconv.FormatInt(r.Version, 10)))
	}
	return "crmctl-import-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// importCmd backfills a module from a CRM export: every row is validated
// before anything is published; then rows are published in file order,
// in batches (crm.v1.RecordsImported), many at once with their acks
// collected (publishImport), with progress, and a failure says exactly
// which rows made it.
func importCmd(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	org := fs.String("org", "", "CRM org id the records belong to (required)")
	module := fs.String("module", "", "module API name, e.g. Leads (required)")
	schemaPath := fs.String("schema", "", "module schema as JSON (crm.v1.ModuleSchema); default: built in for Leads, Contacts, Accounts, Deals")
	natsURL := fs.String("nats", envOr("NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL")
	pkiDir := fs.String("pki", defaultPKI(), "the local runner's NATS passwords: logs in as the org's CRM user crm-<org> (else <USER>_NATS_PASSWORD)")
	format := fs.String("format", "", "csv or ndjson; default: from the file's extension")
	comma := fs.String("comma", ",", "CSV field separator")
	version := fs.Int64("version", 1, "version of records whose row gives none; 1 lets any later CRM change win")
	every := fs.Int("progress", 1000, "print progress every N rows")
	ignoreUnknown := fs.Bool("ignore-unknown", false, "skip columns (CSV) or fields (NDJSON) the schema does not have, instead of refusing the file")
	dryRun := fs.Bool("dry-run", false, "validate only; publish nothing")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: crmctl import -org ORG -module MODULE [-schema schema.json] [flags] FILE.csv|FILE.ndjson")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	var problems []string
	if _, err := topology.Token(*org); err != nil {
		problems = append(problems, "-org: "+err.Error())
	}
	if _, err := topology.Token(*module); err != nil {
		problems = append(problems, "-module: "+err.Error())
	}
	if fs.NArg() != 1 {
		problems = append(problems, "name exactly one file (- for stdin, with -format)")
	}
	if *version < 1 {
		problems = append(problems, "-version must be at least 1")
	}
	if *every < 1 {
		problems = append(problems, "-progress must be at least 1")
	}
	sep, n := utf8.DecodeRuneInString(*comma)
	if n == 0 || n != len(*comma) || sep == '"' || sep == '\n' || sep == '\r' {
		problems = append(problems, "-comma must be one character other than a quote or a newline")
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	name := fs.Arg(0)
	kind := *format
	if kind == "" {
		switch strings.ToLower(filepath.Ext(name)) {
		case ".csv":
			kind = "csv"
		case ".ndjson", ".jsonl":
			kind = "ndjson"
		default:
			return fmt.Errorf("%s: cannot tell CSV from NDJSON by the name; pass -format", name)
		}
	}
	if kind != "csv" && kind != "ndjson" {
		return fmt.Errorf("-format %q: want csv or ndjson", kind)
	}
	schema, err := loadSchema(*schemaPath, *module)
	if err != nil {
		return err
	}

	var r io.Reader = stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	var rows []row
	var bad []rowError
	switch kind {
	case "csv":
		var cols *csvColumns
		rows, cols, bad = readCSV(r, sep, schema, *ignoreUnknown, *version)
		if cols != nil && len(cols.ignored) > 0 {
			fmt.Fprintf(stdout, "ignoring %d columns the %s schema does not have: %s\n", len(cols.ignored), *module, strings.Join(cols.ignored, ", "))
		}
	case "ndjson":
		rows, bad = readNDJSON(r, schema, *ignoreUnknown, *version)
	}
	if len(bad) > 0 {
		return badRows(name, bad)
	}
	if len(rows) == 0 {
		return fmt.Errorf("%s: no records", name)
	}

	// Each batch's event is made as it is published, of the rows'
	// encodings. They all go to the module's one subject.
	occurred := timestamppb.Now()
	eventOf := func(rs []row) *crmv1.RecordsImported {
		ev := &crmv1.RecordsImported{
			Envelope: &commonv1.Envelope{
				EventId: importEventID(*org, *module, rs), OrgId: *org,
				OccurredAt: occurred, SchemaVersion: 1, Producer: "crmctl-import",
			},
			Schema:  schema,
			Records: make([][]byte, len(rs)),
		}
		for i, rw := range rs {
			ev.Records[i] = rw.Data
		}
		return ev
	}
	subject := topology.RecordsImported(*org, *module)
	if *dryRun {
		fmt.Fprintf(stdout, "%d records valid, to %s; nothing published (dry run)\n", len(rows), subject)
		return nil
	}

	// As the org's CRM user (natslogin.go), on the CRM stream the running
	// stack made.
	pubs := newPublishers(*natsURL, *pkiDir, "crmctl-import")
	defer pubs.close()
	b, err := pubs.forSubject(ctx, subject)
	if err != nil {
		return fmt.Errorf("nothing published: %w", err)
	}
	start := time.Now()
	res := publishImport(ctx, b, subject, eventOf, rows, newProgress(stdout, *every, len(rows)))
	if err := res.err(name, len(rows)); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d rows: %d published, %d already published (duplicates dropped) in %s (%.0f rows/s)\n",
		len(rows), res.published, res.duplicates, time.Since(start).Round(time.Millisecond), float64(len(rows))/time.Since(start).Seconds())
	return nil
}

// badRows reports bad rows: how many, and the first maxReported with their
// line numbers.
func badRows(name string, bad []rowError) error {
	var b strings.Builder
	fmt.Fprintf(&b, "nothing published: %d bad rows in %s", len(bad), name)
	for i, e := range bad {
		if i == maxReported {
			fmt.Fprintf(&b, "\n… and %d more", len(bad)-maxReported)
			break
		}
		if e.Line > 0 {
			fmt.Fprintf(&b, "\n%s:%d: %s", name, e.Line, e.Msg)
		} else {
			fmt.Fprintf(&b, "\n%s: %s", name, e.Msg)
		}
	}
	return errors.New(b.String())
}
