// Package seedset is the deterministic data set every slash-command test
// runs against: four module schemas, a few dozen records built so that each
// example of the seed's tables returns an exact, checkable set, and the
// examples themselves with the records they must return, in display order.
// Unit tests use it against the projection; end-to-end tests feed the same
// records through the bus and expect the same answers.
package seedset

import (
	"fmt"
	"math/rand/v2"

	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

// Org is the org every seed record belongs to.
const Org = "org-seed"

type ft = crmv1.FieldType

const (
	single   = crmv1.FieldType_FIELD_TYPE_SINGLE_LINE
	multiln  = crmv1.FieldType_FIELD_TYPE_MULTI_LINE
	email    = crmv1.FieldType_FIELD_TYPE_EMAIL
	phone    = crmv1.FieldType_FIELD_TYPE_PHONE
	url      = crmv1.FieldType_FIELD_TYPE_URL
	picklist = crmv1.FieldType_FIELD_TYPE_PICKLIST
	multipk  = crmv1.FieldType_FIELD_TYPE_MULTI_PICKLIST
	lookup   = crmv1.FieldType_FIELD_TYPE_LOOKUP
	owner    = crmv1.FieldType_FIELD_TYPE_OWNER
	integer  = crmv1.FieldType_FIELD_TYPE_INTEGER
	currency = crmv1.FieldType_FIELD_TYPE_CURRENCY
	percent  = crmv1.FieldType_FIELD_TYPE_PERCENT
	boolean  = crmv1.FieldType_FIELD_TYPE_BOOLEAN
	date     = crmv1.FieldType_FIELD_TYPE_DATE
	datetime = crmv1.FieldType_FIELD_TYPE_DATETIME
	salut    = crmv1.FieldType_FIELD_TYPE_SALUTATION
)

func field(api, label string, t ft, picks ...string) *crmv1.FieldMeta {
	return &crmv1.FieldMeta{ApiName: api, Label: label, Type: t, PicklistValues: picks}
}

// Schemas returns fresh copies of the four modules' field metadata.
func Schemas() map[string]*crmv1.ModuleSchema {
	return map[string]*crmv1.ModuleSchema{
		"Leads": {
			Module: "Leads", SingularLabel: "Lead", PluralLabel: "Leads", DisplayField: "Full_Name", HasCardView: true,
			Fields: []*crmv1.FieldMeta{
				field("Salutation", "Salutation", salut, "Mr.", "Mrs.", "Ms."),
				field("First_Name", "First Name", single),
				field("Last_Name", "Last Name", single),
				field("Full_Name", "Full Name", single),
				field("Company", "Company", single),
				field("Email", "Email", email),
				field("Phone", "Phone", phone),
				field("Website", "Website", url),
				field("Lead_Source", "Lead Source", picklist, "Advertisement", "Cold Call", "Partner", "Tradeshow", "Webform"),
				field("Annual_Revenue", "Annual Revenue", currency),
				field("Age", "Age", integer),
				field("Date_of_Birth", "Date of Birth", date),
				field("Last_Activity_Time", "Last Activity Time", datetime),
				field("Description", "Description", multiln),
				field("Email_Opt_Out", "Email Opt Out", boolean),
				field("Interests", "Interests", multipk, "CRM", "Chat", "Analytics"),
				field("Owner", "Lead Owner", owner),
			},
		},
		"Contacts": {
			Module: "Contacts", SingularLabel: "Contact", PluralLabel: "Contacts", DisplayField: "Full_Name", HasCardView: true,
			Fields: []*crmv1.FieldMeta{
				field("Salutation", "Salutation", salut, "Mr.", "Mrs.", "Ms."),
				field("First_Name", "First Name", single),
				field("Last_Name", "Last Name", single),
				field("Full_Name", "Full Name", single),
				field("Email", "Email", email),
				field("Account_Name", "Account Name", lookup),
				field("Email_Opt_Out", "Email Opt Out", boolean),
				field("Date_of_Birth", "Date of Birth", date),
			},
		},
		"Accounts": {
			Module: "Accounts", SingularLabel: "Account", PluralLabel: "Accounts", DisplayField: "Account_Name", HasCardView: true,
			Fields: []*crmv1.FieldMeta{
				field("Account_Name", "Account Name", single),
				field("Email", "Email", email),
				field("Industry", "Industry", picklist, "Logistics", "Health", "Retail"),
				field("Website", "Website", url),
			},
		},
		"Deals": {
			Module: "Deals", SingularLabel: "Deal", PluralLabel: "Deals", DisplayField: "Deal_Name", HasCardView: true,
			Fields: []*crmv1.FieldMeta{
				field("Deal_Name", "Deal Name", single),
				field("Amount", "Amount", currency),
				field("Discount", "Discount", percent),
				field("Stage", "Stage", picklist, "Qualification", "Negotiation", "Closed Won"),
				field("Closing_Date", "Closing Date", date),
				field("Account_Name", "Account Name", lookup),
			},
		},
	}
}

// Text builds a text value.
func Text(s string) *crmv1.FieldValue {
	return &crmv1.FieldValue{Kind: &crmv1.FieldValue_Text{Text: s}}
}

// Number builds a number value.
func Number(n float64) *crmv1.FieldValue {
	return &crmv1.FieldValue{Kind: &crmv1.FieldValue_Number{Number: n}}
}

// Bool builds a checkbox value.
func Bool(b bool) *crmv1.FieldValue {
	return &crmv1.FieldValue{Kind: &crmv1.FieldValue_Boolean{Boolean: b}}
}

// Multi builds a multi-select picklist value.
func Multi(v ...string) *crmv1.FieldValue {
	return &crmv1.FieldValue{Kind: &crmv1.FieldValue_Multi{Multi: &crmv1.StringList{Values: v}}}
}

// Lookup builds a lookup (or owner) value.
func Lookup(id, name, module string) *crmv1.FieldValue {
	return &crmv1.FieldValue{Kind: &crmv1.FieldValue_Lookup{Lookup: &crmv1.LookupValue{Id: id, Name: name, Module: module}}}
}

// Date builds a calendar date value.
func Date(d string) *crmv1.FieldValue {
	return &crmv1.FieldValue{Kind: &crmv1.FieldValue_Date{Date: d}}
}

type fields = map[string]*crmv1.FieldValue

// lead lays out one seed lead; zero numbers are left out (absent).
type lead struct {
	id, first, last, company, email, phone, source string
	revenue, age                                   float64
	extra                                          fields
}

func person(first, last string, f fields) fields {
	f["First_Name"], f["Last_Name"], f["Full_Name"] = Text(first), Text(last), Text(first+" "+last)
	return f
}

// Records returns fresh copies of every seed record, version 1, by module.
func Records() map[string][]*crmv1.Record {
	leads := []lead{
		{"lead-01", "Peter", "Watson", "Zylker", "peter.watson@zylker.com", "555-0101", "Tradeshow", 50000, 40,
			fields{"Salutation": Text("Mr."), "Email_Opt_Out": Bool(false), "Interests": Multi("CRM", "Chat"), "Owner": Lookup("u1", "Ada Admin", "Users")}},
		{"lead-02", "Mary", "Watson", "Acme Corp", "mary.watson@acme.com", "301-555-0102", "Webform", 120000, 35,
			fields{"Date_of_Birth": Date("1990-04-01")}},
		{"lead-03", "John", "Smith", "Zylker", "smith.john@zylker.com", "234-0103", "Cold Call", 75000, 52, nil},
		{"lead-04", "Anna", "Peterson", "Zylkerton Labs", "peter.anna@zylkerton.io", "(912) 0104", "Advertisement", 49999, 41, nil},
		{"lead-05", "Sam", "Doe", "Zyl Industries", "sam@zylind.com", "912-0105", "Partner", 50001, 28, nil},
		{"lead-06", "Eve", "Stone", "Globex", "smithers@globex.com", "555-0106", "Tradeshow", 10000, 39, nil},
		{"lead-07", "Kate", "WATSON", "Zylker Inc", "kate@zylker.com", "777-0107", "Tradeshow", 0, 0, nil},
		{"lead-08", "Tom", "Watsonville", "Initech", "tom@initech.com", "555-0108", "Webform", 50000.5, 40, nil},
		{"lead-09", "Nina", "Brown", "Umbrella", "nina@umbrella.com", "234-0109", "Advertisement", 30000, 45,
			fields{"Description": Text("Met at the Zylker booth")}},
		{"lead-10", "Omar", "Haddad", "Peter Smith & Co", "omar@haddad.fr", "912-0110", "Cold Call", 60000, 33, nil},
		{"lead-11", "Lena", "Smithson", "ZYLKER", "Smithson.Lena@zylker.de", "555 0111", "Partner", 0, 0, nil},
		{"lead-12", "Paul", "Martin", "Zylker", "paul@zylker.com", "912-0112", "Webform", 20000, 60, nil},
	}
	out := map[string][]*crmv1.Record{}
	for _, l := range leads {
		f := person(l.first, l.last, fields{
			"Company": Text(l.company), "Email": Text(l.email), "Phone": Text(l.phone), "Lead_Source": Text(l.source),
		})
		if l.revenue != 0 {
			f["Annual_Revenue"] = Number(l.revenue)
		}
		if l.age != 0 {
			f["Age"] = Number(l.age)
		}
		for k, v := range l.extra {
			f[k] = v
		}
		out["Leads"] = append(out["Leads"], record("Leads", l.id, f))
	}

	contacts := []struct {
		id, first, last string
		optOut          *crmv1.FieldValue
	}{
		{"contact-01", "James", "Butler", Bool(true)},
		{"contact-02", "Jameson", "Cutler", Bool(false)},
		{"contact-03", "Jim", "McButler", Bool(true)},
		{"contact-04", "Alice", "Butlerson", Bool(false)},
		{"contact-05", "Sarah", "Butler", Bool(false)},
		{"contact-06", "Tom", "Hanks", nil},
		{"contact-07", "JAMES", "Oliver", nil},
	}
	for _, c := range contacts {
		f := person(c.first, c.last, fields{"Account_Name": Lookup("account-02", "Zylker", "Accounts")})
		if c.optOut != nil {
			f["Email_Opt_Out"] = c.optOut
		}
		out["Contacts"] = append(out["Contacts"], record("Contacts", c.id, f))
	}

	for _, a := range []struct{ id, name, email string }{
		{"account-01", "Concord Supplies", "info@concord.com"},
		{"account-02", "Zylker", "sales@zylker.com"},
		{"account-03", "Bronco Freight", "hello@bronco.io"},
		{"account-04", "Medi Care", "ONCALL@medi.com"},
		{"account-05", "Quiet Co", ""},
	} {
		f := fields{"Account_Name": Text(a.name)}
		if a.email != "" {
			f["Email"] = Text(a.email)
		}
		out["Accounts"] = append(out["Accounts"], record("Accounts", a.id, f))
	}

	for _, d := range []struct {
		id, name         string
		amount, discount float64
	}{
		{"deal-01", "Alpha renewal", 15000, 10},
		{"deal-02", "Beta upgrade", 20000, 15},
		{"deal-03", "Gamma pilot", 5000, 0},
		{"deal-04", "Delta expansion", 250000, 20},
		{"deal-05", "Epsilon trial", 19999.99, 14.99},
	} {
		f := fields{"Deal_Name": Text(d.name), "Amount": Number(d.amount), "Stage": Text("Negotiation")}
		if d.discount != 0 {
			f["Discount"] = Number(d.discount)
		}
		out["Deals"] = append(out["Deals"], record("Deals", d.id, f))
	}
	return out
}

func record(module, id string, f fields) *crmv1.Record {
	return &crmv1.Record{Module: module, Id: id, Version: 1, Fields: f, Url: fmt.Sprintf("https://crm.example/%s/%s", module, id)}
}

// Example is a command text and the records it must return: the ids shown
// (at most 10, in display order) and how many matched in all.
type Example struct {
	Text  string
	Want  []string
	Total int
}

// Examples are every example of the seed's slash-command tables, in the
// seed's order, with the answers the seed data gives.
func Examples() []Example {
	return []Example{
		{"/zcrm leads", []string{"lead-04", "lead-06", "lead-03", "lead-07", "lead-11", "lead-02", "lead-09", "lead-10", "lead-12", "lead-01"}, 12},
		{"/zcrm leads zylker", []string{"lead-04", "lead-03", "lead-07", "lead-11", "lead-09", "lead-12", "lead-01"}, 7},
		{"/zcrm leads [last name]=[watson]", []string{"lead-07", "lead-02", "lead-01"}, 3},
		{"/zcrm leads [phone] starts with [555,234,912],[company] contains [zyl],[email] starts with [peter, smith],[company] is [zylker].",
			[]string{"lead-04", "lead-03", "lead-11", "lead-01"}, 4},
		{"/zcrm leads [last name]=[watson] [lead source]=[tradeshow]", []string{"lead-07", "lead-01"}, 2},
		{"/zcrm leads [lead source]=[webform, tradeshow, cold call]",
			[]string{"lead-06", "lead-03", "lead-07", "lead-02", "lead-10", "lead-12", "lead-01", "lead-08"}, 8},
		{"/zcrm contacts [first name] starts with [james]", []string{"contact-01", "contact-07", "contact-02"}, 3},
		{"/zcrm contacts [last name] ends with [butler]", []string{"contact-01", "contact-03", "contact-05"}, 3},
		{"/zcrm accounts [email] contains [onc]", []string{"account-03", "account-01", "account-04"}, 3},
		{"/zcrm leads [annual revenue] > [50000]", []string{"lead-03", "lead-02", "lead-10", "lead-05", "lead-08"}, 5},
		{"/zcrm deals [amount] < [20000]", []string{"deal-01", "deal-05", "deal-03"}, 3},
		{"/zcrm deals [discount] >= [15]", []string{"deal-02", "deal-04"}, 2},
		{"/zcrm leads [age] <= [40]", []string{"lead-06", "lead-02", "lead-10", "lead-01", "lead-05", "lead-08"}, 6},
		{"/zcrm contacts [email opt out] is [true]", []string{"contact-01", "contact-03"}, 2},
	}
}

// Refusal is a command text the service must refuse, and a piece of the
// message the user must read.
type Refusal struct {
	Name, Text, MessageContains string
}

// Refusals are the refusals issue 5 lists, against the seed schemas.
func Refusals() []Refusal {
	return []Refusal{
		{"six fields", "leads [first name] is [a] [last name] is [b] [company] is [c] [email] is [d] [phone] is [5] [lead source] is [e]", "at most 5 fields"},
		{"eleven values", "leads [last name] is [a,b,c,d,e,f,g,h,i,j,k]", "at most 10"},
		{"eleven values over two criteria", "leads [last name] is [a,b,c,d,e,f] [last name] starts with [g,h,i,j,k]", "at most 10"},
		{"singular module", "lead [last name]=[watson]", "did you mean leads?"},
		{"tasks module", "tasks [subject] contains [call]", "use leads, contacts, accounts or deals"},
		{"date field", "leads [date of birth] is [1990-04-01]", "date field"},
		{"date-time field", "leads [last activity time] > [2026]", "date-time field"},
		{"salutation field", "leads [salutation] is [mr.]", "salutation field"},
		{"greater than on text", "leads [company] > [zyl]", `">" does not apply to [Company], a text field`},
		{"contains on a number", "leads [annual revenue] contains [5]", `"contains" does not apply to [Annual Revenue], a number field`},
		{"unknown label", "leads [last nmae] is [watson]", "did you mean [Last Name]"},
		{"upper-case comparator", "leads [last name] IS [watson]", "comparators are case-sensitive and written in lower case"},
		{"unclosed bracket", "leads [last name] is [watson", "never closed"},
		{"empty value", "leads [last name] is [watson, ]", "empty value"},
		{"not a number", "leads [age] > [forty]", "not a number"},
		{"not a boolean", "contacts [email opt out] is [maybe]", "true or false"},
	}
}

// GeneratedLeads returns n leads drawn from a fixed seed, shaped like the
// seed records (names, companies, phones, sources, revenue, age, notes),
// for benchmarks: ids lead-000000 upwards, version 1.
func GeneratedLeads(n int) []*crmv1.Record {
	rng := rand.New(rand.NewPCG(5, 100_000))
	firsts := []string{"Peter", "Mary", "John", "Anna", "Sam", "Eve", "Kate", "Tom", "Nina", "Omar", "Lena", "Paul", "James", "Sarah"}
	lasts := []string{"Watson", "Smith", "Peterson", "Doe", "Stone", "Watsonville", "Brown", "Haddad", "Smithson", "Martin", "Butler", "Nguyen", "Garcia", "Müller"}
	companies := []string{"Zylker", "Zylkerton Labs", "Acme Corp", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries", "Wayne Enterprises", "Cyberdyne"}
	sources := []string{"Advertisement", "Cold Call", "Partner", "Tradeshow", "Webform"}
	prefixes := []string{"555", "234", "912", "301", "415", "020"}
	notes := []string{"Met at the booth", "Asked for a demo of the analytics add-on", "Referred by a partner", "", "Wants a quote before the end of the quarter"}
	out := make([]*crmv1.Record, n)
	for i := range n {
		first, last := firsts[rng.IntN(len(firsts))], lasts[rng.IntN(len(lasts))]
		f := fields{
			"First_Name": Text(first), "Last_Name": Text(last), "Full_Name": Text(first + " " + last),
			"Company":        Text(companies[rng.IntN(len(companies))]),
			"Email":          Text(fmt.Sprintf("%s.%s%d@example.com", first, last, i)),
			"Phone":          Text(fmt.Sprintf("%s-%04d", prefixes[rng.IntN(len(prefixes))], rng.IntN(10000))),
			"Lead_Source":    Text(sources[rng.IntN(len(sources))]),
			"Annual_Revenue": Number(float64(rng.IntN(200) * 1000)),
			"Age":            Number(float64(20 + rng.IntN(50))),
			"Description":    Text(notes[rng.IntN(len(notes))]),
			"Email_Opt_Out":  Bool(rng.IntN(2) == 0),
			"Owner":          Lookup("u1", "Ada Admin", "Users"),
		}
		out[i] = record("Leads", fmt.Sprintf("lead-%06d", i), f)
	}
	return out
}
