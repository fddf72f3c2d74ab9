package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/topology"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

func mustSchema(t testing.TB, path, module string) *crmv1.ModuleSchema {
	t.Helper()
	s, err := loadSchema(path, module)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// decoded is a row's record, as it will be published.
func decoded(t testing.TB, r row) *crmv1.Record {
	t.Helper()
	rec := &crmv1.Record{}
	if err := proto.Unmarshal(r.Data, rec); err != nil {
		t.Fatalf("row on line %d: %v", r.Line, err)
	}
	if rec.GetId() != r.ID || rec.GetVersion() != r.Version {
		t.Fatalf("row on line %d: id %q, version %d; its record's %q, %d", r.Line, r.ID, r.Version, rec.GetId(), rec.GetVersion())
	}
	return rec
}

func TestReadCSVTypesValues(t *testing.T) {
	t.Parallel()
	f, err := os.Open("testdata/leads.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, _, bad := readCSV(f, ',', mustSchema(t, "", "Leads"), false, 1)
	if len(bad) > 0 {
		t.Fatalf("bad rows: %v", bad)
	}
	if len(rows) != 5 {
		t.Fatalf("%d rows, want 5", len(rows))
	}
	lines := []int{2, 3, 4, 6, 7} // the blank line 5 is skipped
	for i, r := range rows {
		if r.Line != lines[i] {
			t.Errorf("row %d on line %d, want %d", i, r.Line, lines[i])
		}
	}
	peter, mary, anna, sam := decoded(t, rows[0]), decoded(t, rows[1]), decoded(t, rows[3]), decoded(t, rows[4])
	checks := []struct {
		name string
		ok   bool
	}{
		{"id, module and version", peter.GetId() == "zcrm_1001" && peter.GetModule() == "Leads" && peter.GetVersion() == 1},
		{"currency with code and grouping", peter.GetFields()["Annual_Revenue"].GetNumber() == 50000},
		{"integer", peter.GetFields()["No_of_Employees"].GetNumber() == 120},
		{"boolean", !peter.GetFields()["Email_Opt_Out"].GetBoolean() && mary.GetFields()["Email_Opt_Out"].GetBoolean()},
		{"multi-select split on ;", proto.Equal(peter.GetFields()["Tag"].GetMulti(), &crmv1.StringList{Values: []string{"CRM", "Chat"}})},
		{"owner as a lookup", peter.GetFields()["Owner"].GetLookup().GetName() == "Ada Admin" && peter.GetFields()["Owner"].GetLookup().GetModule() == "Users"},
		{"date", peter.GetFields()["Date_of_Birth"].GetDate() == "1980-04-01"},
		{"datetime without zone is UTC", peter.GetFields()["Created_Time"].GetDatetime().AsTime().Format("2006-01-02T15:04:05Z07:00") == "2026-01-15T09:30:00Z"},
		{"quoted comma", mary.GetFields()["Company"].GetText() == "Acme, Corp"},
		{"empty cell leaves the field out", mary.GetFields()["Tag"] == nil && mary.GetFields()["Date_of_Birth"] == nil},
		{"full name completed", peter.GetFields()["Full_Name"].GetText() == "Peter Watson"},
		{"escaped quote", anna.GetFields()["Last_Name"].GetText() == `Peterson "Annie"`},
		{"euro symbol", sam.GetFields()["Annual_Revenue"].GetNumber() == 50001},
		{"1 is true", sam.GetFields()["Email_Opt_Out"].GetBoolean()},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: %v", c.name, rows)
		}
	}
}

func TestParseNumber(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]float64{
		"50000": 50000, "50,000": 50000, "1,250,000.50": 1250000.5, "USD 1,000": 1000, "$12.5": 12.5, "15 %": 15, "15%": 15,
		"-3": -3, "-1,000": -1000, "€ 50001": 50001, "0.5": 0.5, "1,000.": 1000,
	} {
		if got, err := parseNumber(in); err != nil || got != want {
			t.Errorf("parseNumber(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "abc", "1,00", "1,0000", ",100", "1.2.3", "NaN", "Inf", "USD", "1 000"} {
		if got, err := parseNumber(in); err == nil {
			t.Errorf("parseNumber(%q) = %v, want an error", in, got)
		}
	}
}

// TestImportRefusesBadFilesWhole: every bad row is reported with its line,
// and nothing is published (no NATS is even needed).
func TestImportRefusesBadFilesWhole(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		file string
		args []string
		want []string
	}{
		{"testdata/leads_bad.csv", []string{"-module", "Leads"}, []string{
			"nothing published: 5 bad rows",
			`leads_bad.csv:3: "Email": "not-an-email" is not an email address`,
			`"Annual Revenue": "lots" is not a number`, `"Email Opt Out": "maybe" is not true or false`, `"Date of Birth": "01/04/1980" is not a date`,
			"leads_bad.csv:4: no record id",
			`leads_bad.csv:5: record id "zcrm_1" already on line 2`,
			"leads_bad.csv:6: 3 cells, the header has 8",
			`leads_bad.csv:7: "Annual Revenue": "1,00" is not a number`,
		}},
		{"testdata/deals_bad.ndjson", []string{"-module", "Deals"}, []string{
			"nothing published: 5 bad rows",
			"deals_bad.ndjson:2: Amount: a text value in a currency field",
			"deals_bad.ndjson:3: a Leads record in an import of Deals",
			"deals_bad.ndjson:4: not a record",
			`deals_bad.ndjson:5: "Nope" is no field of Deals`,
			`deals_bad.ndjson:6: record id "d1" already on line 1`,
		}},
		{"testdata/vendors.csv", []string{"-module", "Vendors", "-schema", "testdata/vendors_schema.json", "-comma", ";"}, []string{
			`column 5 "Fax" is no field of Vendors`,
		}},
		{"testdata/leads.csv", []string{"-module", "Tasks"}, []string{"no built-in schema for module \"Tasks\""}},
		{"testdata/leads.csv", []string{"-module", "Deals"}, []string{`column 2 "First Name" is no field of Deals`}},
	} {
		t.Run(c.file, func(t *testing.T) {
			t.Parallel()
			var out, errb bytes.Buffer
			args := append([]string{"import", "-nats", "nats://127.0.0.1:1", "-org", "org1"}, c.args...)
			code := run(context.Background(), append(args, c.file), nil, &out, &errb)
			if code != 1 {
				t.Fatalf("exit %d, stdout %q", code, out.String())
			}
			for _, want := range c.want {
				if !strings.Contains(errb.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, errb.String())
				}
			}
		})
	}
}

// TestImportPublishesOnce imports a CSV export into a real JetStream, with
// progress, then again: the second run is all duplicates, and the stream
// holds the records once, as one RecordsImported with the module's schema.
func TestImportPublishesOnce(t *testing.T) {
	t.Parallel()
	ns := stackNATS(t, "org1")
	ctx := testkit.Context(t)
	args := []string{"import", "-pki", testkit.PKI(t).Path(), "-nats", ns.ClientURL(), "-org", "org1", "-module", "Leads", "-progress", "2", "testdata/leads.csv"}
	var out, errb bytes.Buffer
	if code := run(ctx, args, nil, &out, &errb); code != 0 {
		t.Fatalf("first import: exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"5 rows: 5 published, 0 already published"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("first import output lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := run(ctx, args, nil, &out, &errb); code != 0 {
		t.Fatalf("second import: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "5 rows: 0 published, 5 already published") {
		t.Fatalf("second import: %s", out.String())
	}

	js := testkit.JetStream(t, testkit.NATSConn(t, ns))
	st, err := js.Stream(ctx, topology.StreamCRM)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("stream holds %d messages, want 1 (one batch)", info.State.Msgs)
	}
	msg, err := st.GetMsg(ctx, info.State.FirstSeq)
	if err != nil {
		t.Fatal(err)
	}
	var ev crmv1.RecordsImported
	if err := proto.Unmarshal(msg.Data, &ev); err != nil {
		t.Fatal(err)
	}
	var first crmv1.Record
	if len(ev.GetRecords()) > 0 {
		if err := proto.Unmarshal(ev.GetRecords()[0], &first); err != nil {
			t.Fatal(err)
		}
	}
	if msg.Subject != "crm.v1.org1.record.imported.Leads" || len(ev.GetRecords()) != 5 || first.GetId() != "zcrm_1001" || ev.GetSchema().GetModule() != "Leads" ||
		!strings.HasPrefix(ev.GetEnvelope().GetEventId(), "crmctl-import-") || msg.Header.Get("Nats-Msg-Id") != ev.GetEnvelope().GetEventId() {
		t.Fatalf("first message: %s %v", msg.Subject, &ev)
	}
}

func TestImportNDJSONAndCustomSchema(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"import", "-dry-run", "-org", "org1", "-module", "Deals", "testdata/deals.ndjson"}, nil, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "2 records valid, to crm.v1.org1.record.imported.Deals") {
		t.Fatalf("exit %d: %s %s", code, out.String(), errb.String())
	}
	f, err := os.Open("testdata/deals.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, bad := readNDJSON(f, mustSchema(t, "", "Deals"), false, 7)
	if len(bad) > 0 || len(rows) != 2 || decoded(t, rows[0]).GetVersion() != 3 || rows[1].Version != 7 || rows[1].Line != 3 {
		t.Fatalf("rows %v, bad %v", rows, bad)
	}

	out.Reset()
	code = run(context.Background(), []string{"import", "-dry-run", "-org", "org1", "-module", "Vendors", "-schema", "testdata/vendors_schema.json",
		"-comma", ";", "-ignore-unknown", "testdata/vendors.csv"}, nil, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "ignoring 1 columns the Vendors schema does not have: Fax") || !strings.Contains(out.String(), "2 records valid") {
		t.Fatalf("exit %d: %s %s", code, out.String(), errb.String())
	}
}

func TestImportFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	noext := filepath.Join(dir, "export")
	writeFile(t, noext, "Record Id\n1\n")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"import", "-module", "Leads", "testdata/leads.csv"}, "-org"},
		{[]string{"import", "-org", "o.1", "-module", "Leads", "testdata/leads.csv"}, "-org"},
		{[]string{"import", "-org", "o", "-module", "Leads"}, "exactly one file"},
		{[]string{"import", "-org", "o", "-module", "Leads", "-version", "0", "testdata/leads.csv"}, "-version"},
		{[]string{"import", "-org", "o", "-module", "Leads", "-comma", "ab", "testdata/leads.csv"}, "-comma"},
		{[]string{"import", "-org", "o", "-module", "Leads", noext}, "pass -format"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), c.args, nil, &out, &errb); code == 0 || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%v: exit %d, stderr %q", c.args, code, errb.String())
		}
	}
}

// FuzzReadCSV: no input panics; every input gives valid records or
// problems with line numbers, never both silently lost.
func FuzzReadCSV(f *testing.F) {
	schema := mustSchema(f, "", "Leads")
	data, err := os.ReadFile("testdata/leads.csv")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(data))
	bad, _ := os.ReadFile("testdata/leads_bad.csv")
	f.Add(string(bad))
	f.Add("Record Id,Annual Revenue\n1,\"1,000\"\n2,\"\n")
	f.Add("\ufeffRecord Id,Tag,Email Opt Out,Created Time\nx,a;;b,OUI,2026-01-01T00:00:00+02:00\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		rows, _, problems := readCSV(strings.NewReader(in), ',', schema, false, 1)
		for _, r := range rows {
			rec := &crmv1.Record{}
			if err := proto.Unmarshal(r.Data, rec); err != nil {
				t.Fatalf("row on line %d is no encoded record: %v", r.Line, err)
			}
			if r.Line < 2 || rec.GetId() == "" || rec.GetId() != r.ID || rec.GetModule() != "Leads" {
				t.Fatalf("invalid row accepted: %+v", r)
			}
		}
		for _, p := range problems {
			if p.Msg == "" {
				t.Fatal("a problem without a message")
			}
		}
	})
}

// A CRM export is often JSON lines keyed by field labels, like a CSV row:
// it reads as the CSV would, bad values reported by line.
func TestReadNDJSONKeyedByLabels(t *testing.T) {
	t.Parallel()
	in := strings.Join([]string{
		`{"Record Id": "d1", "Deal Name": "Zylker renewal", "Amount": 250000, "Stage": "Negotiation/Review", "Version": "3"}`,
		`{"record id": "d2", "deal   name": "Acme pilot", "Amount": "5,000.50"}`,
		`{"Record Id": "d3", "Amount": "lots"}`,
		`{"Deal Name": "no id"}`,
		`{"Record Id": "d4", "Fax": "x"}`,
	}, "\n")
	rows, bad := readNDJSON(strings.NewReader(in), mustSchema(t, "", "Deals"), false, 7)
	if len(rows) != 2 {
		t.Fatalf("rows %v, bad %v", rows, bad)
	}
	d1, d2 := decoded(t, rows[0]), decoded(t, rows[1])
	if d1.GetId() != "d1" || d1.GetVersion() != 3 || d1.GetFields()["Amount"].GetNumber() != 250000 || d1.GetFields()["Deal_Name"].GetText() != "Zylker renewal" {
		t.Errorf("d1 = %v", d1)
	}
	if d2.GetVersion() != 7 || d2.GetFields()["Amount"].GetNumber() != 5000.5 || d2.GetModule() != "Deals" {
		t.Errorf("d2 = %v", d2)
	}
	if len(bad) != 3 || bad[0].Line != 3 || !strings.Contains(bad[0].Msg, "Amount") || bad[1].Line != 4 || !strings.Contains(bad[1].Msg, "Record Id") ||
		bad[2].Line != 5 || !strings.Contains(bad[2].Msg, "Fax") {
		t.Errorf("problems %v", bad)
	}
}
