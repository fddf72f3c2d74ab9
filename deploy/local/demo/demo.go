// Package demo is the data a fresh `make run` starts with, so the sandbox
// has something to search, share and be notified about: the CRM users of
// the stand-in's Acme workspace (same emails, so each Slack person is a CRM
// user), the four modules' schemas and a few hundred records across Leads,
// Contacts, Accounts and Deals. Everything is deterministic: the same org
// always gets the same records with the same event ids, so loading twice
// publishes nothing new.
package demo

import (
	"fmt"
	"strings"

	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

// Sizes of the data set per module.
const (
	NumAccounts = 40
	NumContacts = 90
	NumLeads    = 100
	NumDeals    = 80
)

// User is a CRM user of the demo org.
type User struct {
	ID, Email, FullName string
	Admin               bool
}

// Users are the demo org's CRM users: the people of the stand-in's Acme
// workspace, alice being the administrator.
func Users() []User {
	return []User{
		{ID: "crm-alice", Email: "alice@acme.example", FullName: "Alice Martin", Admin: true},
		{ID: "crm-bob", Email: "bob@acme.example", FullName: "Bob Durand"},
		{ID: "crm-carol", Email: "carol@acme.example", FullName: "Carol Petit"},
		{ID: "crm-dan", Email: "dan@acme.example", FullName: "Dan Moreau"},
		{ID: "crm-eve", Email: "eve@acme.example", FullName: "Eve Laurent"},
	}
}

// UserByEmail finds a demo user.
func UserByEmail(email string) (User, bool) {
	for _, u := range Users() {
		if strings.EqualFold(u.Email, email) {
			return u, true
		}
	}
	return User{}, false
}

type ft = crmv1.FieldType

func fieldMeta(api, label string, t ft, extra ...string) *crmv1.FieldMeta {
	f := &crmv1.FieldMeta{ApiName: api, Label: label, Type: t}
	if t == crmv1.FieldType_FIELD_TYPE_LOOKUP && len(extra) == 1 {
		f.LookupModule = extra[0]
	} else {
		f.PicklistValues = extra
	}
	return f
}

// Stages are the Deals' stages; StageWon is the one "deal won" sets.
var Stages = []string{"Qualification", "Needs Analysis", "Proposal/Price Quote", "Negotiation/Review", StageWon, "Closed Lost"}

// StageWon is the stage of a won deal.
const StageWon = "Closed Won"

// Schemas are the modules' field metadata, as the CRM sends it with each
// record.
func Schemas() map[string]*crmv1.ModuleSchema {
	const (
		single   = crmv1.FieldType_FIELD_TYPE_SINGLE_LINE
		email    = crmv1.FieldType_FIELD_TYPE_EMAIL
		phone    = crmv1.FieldType_FIELD_TYPE_PHONE
		website  = crmv1.FieldType_FIELD_TYPE_URL
		picklist = crmv1.FieldType_FIELD_TYPE_PICKLIST
		lookup   = crmv1.FieldType_FIELD_TYPE_LOOKUP
		owner    = crmv1.FieldType_FIELD_TYPE_OWNER
		integer  = crmv1.FieldType_FIELD_TYPE_INTEGER
		currency = crmv1.FieldType_FIELD_TYPE_CURRENCY
		percent  = crmv1.FieldType_FIELD_TYPE_PERCENT
		date     = crmv1.FieldType_FIELD_TYPE_DATE
	)
	return map[string]*crmv1.ModuleSchema{
		"Accounts": {Module: "Accounts", SingularLabel: "Account", PluralLabel: "Accounts", DisplayField: "Account_Name", HasCardView: true,
			Fields: []*crmv1.FieldMeta{
				fieldMeta("Account_Name", "Account Name", single),
				fieldMeta("Industry", "Industry", picklist, industries...),
				fieldMeta("Phone", "Phone", phone),
				fieldMeta("Website", "Website", website),
				fieldMeta("Employees", "Employees", integer),
				fieldMeta("Annual_Revenue", "Annual Revenue", currency),
				fieldMeta("Billing_City", "Billing City", single),
				fieldMeta("Owner", "Account Owner", owner),
			}},
		"Contacts": {Module: "Contacts", SingularLabel: "Contact", PluralLabel: "Contacts", DisplayField: "Full_Name", HasCardView: true,
			Fields: []*crmv1.FieldMeta{
				fieldMeta("First_Name", "First Name", single),
				fieldMeta("Last_Name", "Last Name", single),
				fieldMeta("Full_Name", "Full Name", single),
				fieldMeta("Title", "Title", single),
				fieldMeta("Email", "Email", email),
				fieldMeta("Phone", "Phone", phone),
				fieldMeta("Account_Name", "Account Name", lookup, "Accounts"),
				fieldMeta("Mailing_City", "Mailing City", single),
				fieldMeta("Owner", "Contact Owner", owner),
			}},
		"Leads": {Module: "Leads", SingularLabel: "Lead", PluralLabel: "Leads", DisplayField: "Full_Name", HasCardView: true,
			Fields: []*crmv1.FieldMeta{
				fieldMeta("First_Name", "First Name", single),
				fieldMeta("Last_Name", "Last Name", single),
				fieldMeta("Full_Name", "Full Name", single),
				fieldMeta("Company", "Company", single),
				fieldMeta("Email", "Email", email),
				fieldMeta("Phone", "Phone", phone),
				fieldMeta("Lead_Status", "Lead Status", picklist, leadStatuses...),
				fieldMeta("Lead_Source", "Lead Source", picklist, leadSources...),
				fieldMeta("Annual_Revenue", "Annual Revenue", currency),
				fieldMeta("City", "City", single),
				fieldMeta("Owner", "Lead Owner", owner),
			}},
		"Deals": {Module: "Deals", SingularLabel: "Deal", PluralLabel: "Deals", DisplayField: "Deal_Name", HasCardView: true,
			Fields: []*crmv1.FieldMeta{
				fieldMeta("Deal_Name", "Deal Name", single),
				fieldMeta("Account_Name", "Account Name", lookup, "Accounts"),
				fieldMeta("Contact_Name", "Contact Name", lookup, "Contacts"),
				fieldMeta("Amount", "Amount", currency),
				fieldMeta("Stage", "Stage", picklist, Stages...),
				fieldMeta("Probability", "Probability (%)", percent),
				fieldMeta("Closing_Date", "Closing Date", date),
				fieldMeta("Owner", "Deal Owner", owner),
			}},
	}
}

// Modules are the modules in the order they are loaded: a lookup's target
// before the records pointing at it.
var Modules = []string{"Accounts", "Contacts", "Leads", "Deals"}

var (
	industries   = []string{"Software", "Manufacturing", "Retail", "Healthcare", "Finance", "Logistics"}
	leadStatuses = []string{"Not Contacted", "Attempted to Contact", "Contacted", "Qualified", "Lost Lead"}
	leadSources  = []string{"Advertisement", "Cold Call", "Partner", "Tradeshow", "Webform"}
	firstNames   = []string{"Emma", "Louis", "Chloé", "Hugo", "Léa", "Gabriel", "Manon", "Arthur", "Camille", "Jules", "Sarah", "Adam", "Inès", "Raphaël", "Jade", "Paul", "Lina", "Nathan", "Zoé", "Tom"}
	lastNames    = []string{"Watson", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau", "Simon", "Laurent", "Lefebvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier", "Morel", "Girard", "André"}
	companyHeads = []string{"Zylker", "Zoho", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Acme", "Vandelay", "Soylent", "Tyrell", "Cyberdyne", "Wonka"}
	companyTails = []string{"Corp", "Industries", "Systems", "Labs", "Partners", "Group"}
	cities       = []string{"Paris", "Lyon", "Marseille", "Toulouse", "Nantes", "Lille", "Bordeaux", "Strasbourg", "Montréal", "Bruxelles"}
	titles       = []string{"CEO", "CTO", "Head of Sales", "Buyer", "Operations Manager", "CFO", "IT Director"}
)

func text(s string) *crmv1.FieldValue {
	return &crmv1.FieldValue{Kind: &crmv1.FieldValue_Text{Text: s}}
}
func number(f float64) *crmv1.FieldValue {
	return &crmv1.FieldValue{Kind: &crmv1.FieldValue_Number{Number: f}}
}
func date(s string) *crmv1.FieldValue {
	return &crmv1.FieldValue{Kind: &crmv1.FieldValue_Date{Date: s}}
}
func lookupOf(id, name, module string) *crmv1.FieldValue {
	return &crmv1.FieldValue{Kind: &crmv1.FieldValue_Lookup{Lookup: &crmv1.LookupValue{Id: id, Name: name, Module: module}}}
}

// pick is a deterministic choice: the i-th element of a cycle of xs,
// strided so neighbouring records differ in every field.
func pick[T any](xs []T, i, stride int) T { return xs[(i*stride)%len(xs)] }

// ownerOf spreads the records over the users; alice, the admin, owns few.
func ownerOf(i int) User {
	us := Users()
	return us[1+i%(len(us)-1)]
}

// Records returns module's records, all at version 1 (any later change
// from the CRM wins).
func Records(module string) []*crmv1.Record {
	var out []*crmv1.Record
	add := func(id string, owner User, f map[string]*crmv1.FieldValue) {
		f["Owner"] = lookupOf(owner.ID, owner.FullName, "Users")
		out = append(out, &crmv1.Record{
			Module: module, Id: id, Version: 1, Fields: f,
			Owner: owner.Ref(),
		})
	}
	switch module {
	case "Accounts":
		for i := range NumAccounts {
			name := AccountName(i)
			add(AccountID(i), ownerOf(i), map[string]*crmv1.FieldValue{
				"Account_Name":   text(name),
				"Industry":       text(pick(industries, i, 1)),
				"Phone":          text(fmt.Sprintf("+33 1 %02d %02d %02d %02d", 40+i%50, i%97, (i*7)%100, (i*13)%100)),
				"Website":        text("https://" + strings.ToLower(strings.ReplaceAll(name, " ", "-")) + ".example"),
				"Employees":      number(float64(10 + (i*37)%2000)),
				"Annual_Revenue": number(float64(250_000 + (i*7919)%40*125_000)),
				"Billing_City":   text(pick(cities, i, 3)),
			})
		}
	case "Contacts":
		for i := range NumContacts {
			first, last := pick(firstNames, i, 1), pick(lastNames, i, 7)
			acct := i % NumAccounts
			add(ContactID(i), ownerOf(i), map[string]*crmv1.FieldValue{
				"First_Name":   text(first),
				"Last_Name":    text(last),
				"Full_Name":    text(first + " " + last),
				"Title":        text(pick(titles, i, 3)),
				"Email":        text(emailOf(first, last, i)),
				"Phone":        text(fmt.Sprintf("+33 6 %02d %02d %02d %02d", i%100, (i*3)%100, (i*11)%100, (i*17)%100)),
				"Account_Name": lookupOf(AccountID(acct), AccountName(acct), "Accounts"),
				"Mailing_City": text(pick(cities, i, 7)),
			})
		}
	case "Leads":
		for i := range NumLeads {
			first, last := pick(firstNames, i, 3), pick(lastNames, i, 5)
			add(LeadID(i), ownerOf(i), map[string]*crmv1.FieldValue{
				"First_Name":     text(first),
				"Last_Name":      text(last),
				"Full_Name":      text(first + " " + last),
				"Company":        text(companyName(i + 3)),
				"Email":          text(emailOf(first, last, 1000+i)),
				"Phone":          text(fmt.Sprintf("+33 7 %02d %02d %02d %02d", i%100, (i*5)%100, (i*19)%100, (i*23)%100)),
				"Lead_Status":    text(pick(leadStatuses, i, 1)),
				"Lead_Source":    text(pick(leadSources, i, 2)),
				"Annual_Revenue": number(float64(50_000 + (i*104729)%60*25_000)),
				"City":           text(pick(cities, i, 1)),
			})
		}
	case "Deals":
		for i := range NumDeals {
			acct, contact := i%NumAccounts, (i*3)%NumContacts
			stage := pick(Stages[:4], i, 1) // every demo deal is open: "deal won" closes one
			add(DealID(i), ownerOf(i), map[string]*crmv1.FieldValue{
				"Deal_Name":    text(DealName(i)),
				"Account_Name": lookupOf(AccountID(acct), AccountName(acct), "Accounts"),
				"Contact_Name": lookupOf(ContactID(contact), contactName(contact), "Contacts"),
				"Amount":       number(float64(5_000 + (i*7877)%50*2_500)),
				"Stage":        text(stage),
				"Probability":  number(float64(10 + 20*(i%4))),
				"Closing_Date": date(fmt.Sprintf("2027-%02d-%02d", 1+i%12, 1+(i*7)%28)),
			})
		}
	}
	return out
}

// Ref is the user as a record's owner or an activity's participant.
func (u User) Ref() *commonv1.CrmUserRef {
	return &commonv1.CrmUserRef{Id: u.ID, Email: u.Email, Name: u.FullName}
}

func emailOf(first, last string, i int) string {
	clean := strings.NewReplacer("é", "e", "ë", "e", "è", "e", "ï", "i")
	return fmt.Sprintf("%s.%s%d@example.com", strings.ToLower(clean.Replace(first)), strings.ToLower(clean.Replace(last)), i)
}

func companyName(i int) string {
	return pick(companyHeads, i, 1) + " " + pick(companyTails, i/len(companyHeads), 1)
}

// AccountID, ContactID, LeadID and DealID are the records' ids.
func AccountID(i int) string { return fmt.Sprintf("acct-%03d", i) }

// ContactID is the id of the i-th contact.
func ContactID(i int) string { return fmt.Sprintf("cont-%03d", i) }

// LeadID is the id of the i-th lead.
func LeadID(i int) string { return fmt.Sprintf("lead-%03d", i) }

// DealID is the id of the i-th deal.
func DealID(i int) string { return fmt.Sprintf("deal-%03d", i) }

// AccountName is the i-th account's name.
func AccountName(i int) string { return companyName(i) }

// DealName is the i-th deal's name.
func DealName(i int) string {
	return fmt.Sprintf("%s — %s", AccountName(i%NumAccounts), pick([]string{"Renewal", "Expansion", "New licences", "Pilot", "Support plan"}, i, 1))
}

func contactName(i int) string { return pick(firstNames, i, 1) + " " + pick(lastNames, i, 7) }
