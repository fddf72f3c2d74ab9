package card_test

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

// Test data builders: short names keep the fixtures readable.

func text(s string) *crmv1.FieldValue {
	return &crmv1.FieldValue{Kind: &crmv1.FieldValue_Text{Text: s}}
}
func num(f float64) *crmv1.FieldValue {
	return &crmv1.FieldValue{Kind: &crmv1.FieldValue_Number{Number: f}}
}
func boolean(b bool) *crmv1.FieldValue {
	return &crmv1.FieldValue{Kind: &crmv1.FieldValue_Boolean{Boolean: b}}
}
func date(s string) *crmv1.FieldValue {
	return &crmv1.FieldValue{Kind: &crmv1.FieldValue_Date{Date: s}}
}
func datetime(t time.Time) *crmv1.FieldValue {
	return &crmv1.FieldValue{Kind: &crmv1.FieldValue_Datetime{Datetime: timestamppb.New(t)}}
}
func multi(v ...string) *crmv1.FieldValue {
	return &crmv1.FieldValue{Kind: &crmv1.FieldValue_Multi{Multi: &crmv1.StringList{Values: v}}}
}
func lookup(module, id, name string) *crmv1.FieldValue {
	return &crmv1.FieldValue{Kind: &crmv1.FieldValue_Lookup{Lookup: &crmv1.LookupValue{Module: module, Id: id, Name: name}}}
}

func fm(api, label string, t crmv1.FieldType) *crmv1.FieldMeta {
	return &crmv1.FieldMeta{ApiName: api, Label: label, Type: t}
}

const (
	tText     = crmv1.FieldType_FIELD_TYPE_SINGLE_LINE
	tEmail    = crmv1.FieldType_FIELD_TYPE_EMAIL
	tPhone    = crmv1.FieldType_FIELD_TYPE_PHONE
	tURL      = crmv1.FieldType_FIELD_TYPE_URL
	tPick     = crmv1.FieldType_FIELD_TYPE_PICKLIST
	tMulti    = crmv1.FieldType_FIELD_TYPE_MULTI_PICKLIST
	tLookup   = crmv1.FieldType_FIELD_TYPE_LOOKUP
	tOwner    = crmv1.FieldType_FIELD_TYPE_OWNER
	tInt      = crmv1.FieldType_FIELD_TYPE_INTEGER
	tDecimal  = crmv1.FieldType_FIELD_TYPE_DECIMAL
	tCurrency = crmv1.FieldType_FIELD_TYPE_CURRENCY
	tPercent  = crmv1.FieldType_FIELD_TYPE_PERCENT
	tBool     = crmv1.FieldType_FIELD_TYPE_BOOLEAN
	tDate     = crmv1.FieldType_FIELD_TYPE_DATE
	tDatetime = crmv1.FieldType_FIELD_TYPE_DATETIME
)

func currency(api, label, code string) *crmv1.FieldMeta {
	m := fm(api, label, tCurrency)
	m.CurrencyCode = code
	return m
}

var (
	modified = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)
	owner    = &commonv1.CrmUserRef{Id: "u1", Name: "Ada Lovelace", Email: "ada@example.com"}
)

func dealSchema() *crmv1.ModuleSchema {
	return &crmv1.ModuleSchema{
		Module: "Deals", SingularLabel: "Deal", PluralLabel: "Deals", DisplayField: "Deal_Name", HasCardView: true,
		Fields: []*crmv1.FieldMeta{
			fm("Deal_Name", "Deal Name", tText),
			currency("Amount", "Amount", "EUR"),
			fm("Stage", "Stage", tPick),
			fm("Closing_Date", "Closing Date", tDate),
			fm("Account_Name", "Account Name", tLookup),
			fm("Owner", "Deal Owner", tOwner),
			fm("Probability", "Probability (%)", tPercent),
		},
	}
}

func deal(id, name string, amount float64) *crmv1.Record {
	return &crmv1.Record{
		Module: "Deals", Id: id, Version: 3, Owner: owner, ModifiedAt: timestamppb.New(modified),
		Fields: map[string]*crmv1.FieldValue{
			"Deal_Name":    text(name),
			"Amount":       num(amount),
			"Stage":        text("Negotiation/Review"),
			"Closing_Date": date("2026-11-25"),
			"Account_Name": lookup("Accounts", "a1", "Zylker & Sons <Intl>"),
			"Probability":  num(75),
		},
	}
}

func leadSchema() *crmv1.ModuleSchema {
	return &crmv1.ModuleSchema{
		Module: "Leads", SingularLabel: "Lead", PluralLabel: "Leads", DisplayField: "Full_Name", HasCardView: true,
		Fields: []*crmv1.FieldMeta{
			fm("Full_Name", "Lead Name", tText),
			fm("Company", "Company", tText),
			fm("Email", "Email", tEmail),
			fm("Phone", "Phone", tPhone),
			fm("Lead_Status", "Lead Status", tPick),
			fm("Lead_Source", "Lead Source", tPick),
			fm("Owner", "Lead Owner", tOwner),
		},
	}
}

func lead(id, name string) *crmv1.Record {
	return &crmv1.Record{
		Module: "Leads", Id: id, Owner: owner,
		Fields: map[string]*crmv1.FieldValue{
			"Full_Name":   text(name),
			"Company":     text("Acme Corp"),
			"Email":       text("kris@acme.example"),
			"Phone":       text("+1 555 0100"),
			"Lead_Status": text("Contacted"),
			// Lead_Source left empty: the card skips it.
			"Lead_Source": text(""),
			"Owner":       lookup("users", "u2", "Grace Hopper"),
		},
	}
}

func contactSchema() *crmv1.ModuleSchema {
	return &crmv1.ModuleSchema{
		Module: "Contacts", SingularLabel: "Contact", PluralLabel: "Contacts", DisplayField: "Full_Name", HasCardView: true,
		Fields: []*crmv1.FieldMeta{
			fm("Full_Name", "Contact Name", tText),
			fm("Account_Name", "Account Name", tLookup),
			fm("Email", "Email", tEmail),
			fm("Phone", "Phone", tPhone),
			fm("Title", "Title", tText),
			fm("Owner", "Contact Owner", tOwner),
		},
	}
}

func contact() *crmv1.Record {
	return &crmv1.Record{
		Module: "Contacts", Id: "c42", Owner: owner, Url: "https://crm.example.com/tab/Contacts/c42",
		Fields: map[string]*crmv1.FieldValue{
			"Full_Name":    text("Linus Torvalds"),
			"Account_Name": lookup("Accounts", "a9", "Kernel Org"),
			"Email":        text("linus@example.org"),
			"Title":        text("Chief <Maintainer>"),
		},
	}
}

func accountSchema() *crmv1.ModuleSchema {
	return &crmv1.ModuleSchema{
		Module: "Accounts", SingularLabel: "Account", PluralLabel: "Accounts", DisplayField: "Account_Name", HasCardView: true,
		Fields: []*crmv1.FieldMeta{
			fm("Account_Name", "Account Name", tText),
			fm("Industry", "Industry", tPick),
			fm("Phone", "Phone", tPhone),
			fm("Website", "Website", tURL),
			currency("Annual_Revenue", "Annual Revenue", "USD"),
			fm("Owner", "Account Owner", tOwner),
		},
	}
}

func account() *crmv1.Record {
	return &crmv1.Record{
		Module: "Accounts", Id: "a1", Owner: owner,
		Fields: map[string]*crmv1.FieldValue{
			"Account_Name":   text("Zylker & Sons"),
			"Industry":       text("Manufacturing"),
			"Phone":          text("+44 20 7946 0000"),
			"Website":        text("https://zylker.example"),
			"Annual_Revenue": num(-1234567.891),
		},
	}
}

// A custom module: no configured key fields, so the card shows its first
// non-empty fields, and every value type appears.
func customSchema() *crmv1.ModuleSchema {
	return &crmv1.ModuleSchema{
		Module: "Properties", SingularLabel: "Property", PluralLabel: "Properties", DisplayField: "Name", HasCardView: true,
		Fields: []*crmv1.FieldMeta{
			fm("Name", "Property Name", tText),
			fm("Notes", "Notes", tText),
			fm("Rooms", "Rooms", tInt),
			fm("Area", "Area (m²)", tDecimal),
			fm("Pets", "Pets Allowed", tBool),
			fm("Amenities", "Amenities", tMulti),
			fm("Viewing", "Next Viewing", tDatetime),
			fm("Listed", "Listed On", tDate),
			fm("Agent", "Agent", tLookup),
		},
	}
}

func property() *crmv1.Record {
	return &crmv1.Record{
		Module: "Properties", Id: "p7",
		Fields: map[string]*crmv1.FieldValue{
			"Name":      text("Flat 3, 10 Downing St"),
			"Notes":     text("   "),
			"Rooms":     num(4),
			"Area":      num(1234.5),
			"Pets":      boolean(false),
			"Amenities": multi("Garden", "", "Lift"),
			"Viewing":   datetime(time.Date(2026, 6, 1, 16, 30, 0, 0, time.UTC)),
			"Listed":    date("2026-05-02"),
			"Agent":     lookup("Agents", "ag1", "Jane Roe"),
		},
	}
}
