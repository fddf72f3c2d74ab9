package main

import (
	"bytes"
	"os"
	"path/filepath"
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
