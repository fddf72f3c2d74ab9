package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/crmslack/crmslack/libs/testkit"
)

// TestImportNamesTheRowThatFailed: a row NATS refuses (past its largest
// payload) stops the import; the rows sent before it are still stored and
// counted, the error names the failed row by its line, and says how many
// rows were not sent.
func TestImportNamesTheRowThatFailed(t *testing.T) {
	t.Parallel()
	ns := stackNATS(t, "org1")
	csv := "Record Id,Full Name,Company\nr1,Ann One,Zylker\nr2,Bob Two,Zylker\nr3,Cat Three," + strings.Repeat("z", 2<<20) + "\nr4,Dan Four,Zylker\n"
	path := filepath.Join(t.TempDir(), "leads.csv")
	if err := os.WriteFile(path, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run(testkit.Context(t), []string{"import", "-pki", testkit.PKI(t).Path(), "-nats", ns.ClientURL(), "-org", "org1", "-module", "Leads", path}, nil, &out, &errb)
	msg := errb.String()
	if code == 0 {
		t.Fatalf("import of a row past NATS's payload limit succeeded: %s", out.String())
	}
	for _, want := range []string{"2 of 4 rows stored (0 already were); 1 failed", path + ":4: ", "the last 1 rows were not sent", "Running the same import again is safe"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%.600s", want, msg)
		}
	}
}

// TestBatches: rows are cut into batches of at most importBatch records
// and importBatchBytes of encoding, in order, none empty; a row larger
// than a batch's bytes is a batch of its own.
func TestBatches(t *testing.T) {
	t.Parallel()
	rec := func(size int) row {
		return row{ID: "r", Version: 1, Data: make([]byte, size)}
	}
	many := make([]row, 2*importBatch+1)
	for i := range many {
		many[i] = rec(10)
	}
	cases := []struct {
		name string
		rows []row
		want []batch
	}{
		{"one", many[:1], []batch{{0, 1}}},
		{"by count", many, []batch{{0, importBatch}, {importBatch, 2 * importBatch}, {2 * importBatch, 2*importBatch + 1}}},
		{"by bytes", []row{rec(importBatchBytes / 2), rec(importBatchBytes / 2), rec(10)}, []batch{{0, 1}, {1, 3}}},
		{"too large alone", []row{rec(10), rec(2 * importBatchBytes), rec(10)}, []batch{{0, 1}, {1, 2}, {2, 3}}},
	}
	for _, c := range cases {
		if got := batches(c.rows); !slices.Equal(got, c.want) {
			t.Errorf("%s: batches %v, want %v", c.name, got, c.want)
		}
	}
}

// TestProgressLines: off a terminal, a line each time the rows acked pass
// another multiple of -progress, though acks come a batch at a time.
func TestProgressLines(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	p := newProgress(&out, 300, 1200)
	p.update(500, 501)
	p.update(1000, 1001)
	p.update(1200, 1201)
	p.finish()
	want := "500 of 1200 rows published (up to line 501)\n1000 of 1200 rows published (up to line 1001)\n"
	if out.String() != want {
		t.Fatalf("progress:\n%s\nwant:\n%s", out.String(), want)
	}
}
