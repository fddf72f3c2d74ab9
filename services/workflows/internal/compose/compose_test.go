package compose

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/card"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"

	"github.com/crmslack/crmslack/services/workflows/internal/template"
	"github.com/crmslack/crmslack/services/workflows/internal/valuefmt"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func schema() *crmv1.ModuleSchema {
	return &crmv1.ModuleSchema{
		Module: "Deals", SingularLabel: "Deal", PluralLabel: "Deals", DisplayField: "Deal_Name", HasCardView: true,
		Fields: []*crmv1.FieldMeta{
			{ApiName: "Deal_Name", Label: "Deal Name", Type: crmv1.FieldType_FIELD_TYPE_SINGLE_LINE},
			{ApiName: "Amount", Label: "Amount", Type: crmv1.FieldType_FIELD_TYPE_CURRENCY, CurrencyCode: "EUR"},
			{ApiName: "Stage", Label: "Stage", Type: crmv1.FieldType_FIELD_TYPE_PICKLIST},
			{ApiName: "Closing_Date", Label: "Closing Date", Type: crmv1.FieldType_FIELD_TYPE_DATE},
			{ApiName: "Signed_At", Label: "Signed At", Type: crmv1.FieldType_FIELD_TYPE_DATETIME},
			{ApiName: "Account_Name", Label: "Account Name", Type: crmv1.FieldType_FIELD_TYPE_LOOKUP},
			{ApiName: "Owner", Label: "Deal Owner", Type: crmv1.FieldType_FIELD_TYPE_OWNER},
		},
	}
}

func record(name string) *crmv1.Record {
	return &crmv1.Record{
		Module: "Deals", Id: "d-1001", Version: 3,
		Owner: &commonv1.CrmUserRef{Id: "crm-alice", Name: "Alice Johnson", Email: "alice@acme.example"},
		Fields: map[string]*crmv1.FieldValue{
			"Deal_Name":    {Kind: &crmv1.FieldValue_Text{Text: name}},
			"Amount":       {Kind: &crmv1.FieldValue_Number{Number: 125000}},
			"Stage":        {Kind: &crmv1.FieldValue_Text{Text: "Closed Won"}},
			"Closing_Date": {Kind: &crmv1.FieldValue_Date{Date: "2026-12-15"}},
			"Signed_At":    {Kind: &crmv1.FieldValue_Datetime{Datetime: timestamppb.New(time.Date(2026, 12, 1, 16, 5, 0, 0, time.UTC))}},
			"Account_Name": {Kind: &crmv1.FieldValue_Lookup{Lookup: &crmv1.LookupValue{Id: "a-1", Name: "Zylker Corp", Module: "Accounts"}}},
		},
	}
}

func bound(t *testing.T, src string) template.Bound {
	t.Helper()
	tpl, err := template.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	b, err := template.Bind(tpl, schema())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const dealWon = ":tada: *Deal won:* #{Deals.Deal Name} for #{Deals.Amount} (#{Deals.Account Name}), signed #{Deals.Signed At}, closing #{Deals.Closing Date}. Owner: #{Owner.Full Name}. #{Record.Link}"

// TestGolden compares the Block Kit JSON with testdata/*.json; run with
// -update after a deliberate change and review the diff.
func TestGolden(t *testing.T) {
	t.Parallel()
	fr, err := valuefmt.New("fr-FR", "EUR", "Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	cfg := card.Config{BaseURL: "https://crm.example.com/crm/acme"}
	for _, tc := range []struct {
		name string
		in   Input
	}{
		{"deal_won_text", Input{Bound: bound(t, dealWon), Record: record("Zylker Q4 licences"), Schema: schema(), Format: valuefmt.Default(), Card: cfg}},
		{"deal_won_card_fr", Input{Bound: bound(t, dealWon), Record: record("Zylker Q4 licences"), Schema: schema(), Format: fr, Card: cfg, AttachCard: true, RuleName: "Big deal won"}},
		{"hostile_values", Input{Bound: bound(t, "Won: #{Deals.Deal Name}"), Record: record("<!channel> *urgent* <@U0ACME0BOB> & `rm`"), Schema: schema(), Format: valuefmt.Default(), Card: cfg, AttachCard: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := Compose(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, m.Blocks, "", "  "); err != nil {
				t.Fatal(err)
			}
			pretty.WriteString("\n")
			path := filepath.Join("testdata", tc.name+".json")
			if *update {
				if err := os.WriteFile(path, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Errorf("blocks differ from %s:\n%s", path, pretty.String())
			}
		})
	}
}
