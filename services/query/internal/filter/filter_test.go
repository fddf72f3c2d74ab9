package filter_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	"github.com/crmslack/crmslack/services/query/internal/filter"
	"github.com/crmslack/crmslack/services/query/internal/seedset"
	"github.com/crmslack/crmslack/services/query/internal/slash"
)

// bind parses and binds text against the seed schemas.
func bind(tb testing.TB, text string) (*filter.Query, error) {
	tb.Helper()
	cmd, err := slash.Parse(text)
	if err != nil {
		return nil, err
	}
	return filter.Bind(cmd, seedset.Schemas()[cmd.Module])
}

func TestSeedRefusals(t *testing.T) {
	t.Parallel()
	for _, r := range seedset.Refusals() {
		t.Run(r.Name, func(t *testing.T) {
			t.Parallel()
			q, err := bind(t, r.Text)
			if err == nil {
				t.Fatalf("%q was accepted: %s", r.Text, q.Describe())
			}
			var pe *slash.ParseError
			var re *filter.RefusalError
			if !errors.As(err, &pe) && !errors.As(err, &re) {
				t.Fatalf("%q: %T %v is neither a ParseError nor a RefusalError", r.Text, err, err)
			}
			if !strings.Contains(err.Error(), r.MessageContains) {
				t.Fatalf("%q: message %q does not contain %q", r.Text, err.Error(), r.MessageContains)
			}
		})
	}
}

func TestBindRefusalReasons(t *testing.T) {
	t.Parallel()
	tests := []struct {
		text   string
		reason error
	}{
		{"leads [first name] is [a] [last name] is [b] [company] is [c] [email] is [d] [phone] is [5] [lead source] is [e]", filter.ErrTooManyFields},
		{"leads [last name] is [a,b,c,d,e,f,g,h,i,j,k]", filter.ErrTooManyValues},
		{"leads [last name] is [a,b,c,d,e,f] [last name] starts with [g,h,i,j,k]", filter.ErrTooManyValues},
		{"leads [date of birth] is [1990-04-01]", filter.ErrNotSearchable},
		{"leads [last activity time] > [1]", filter.ErrNotSearchable},
		{"leads [salutation] is [mr.]", filter.ErrNotSearchable},
		{"leads [website] contains [zylker]", filter.ErrNotSearchable},
		{"leads [company] > [zyl]", filter.ErrComparator},
		{"leads [annual revenue] contains [5]", filter.ErrComparator},
		{"leads [annual revenue] is [5]", filter.ErrComparator},
		{"leads [email opt out] starts with [t]", filter.ErrComparator},
		{"leads [last nmae] is [watson]", filter.ErrUnknownField},
		{"leads [age] > [forty]", filter.ErrBadValue},
		{"leads [age] > [NaN]", filter.ErrBadValue},
		{"leads [age] > [inf]", filter.ErrBadValue},
		{"leads [email opt out] is [yes]", filter.ErrBadValue},
		{"leads [phone] starts with [+]", filter.ErrBadValue},
	}
	for _, tt := range tests {
		_, err := bind(t, tt.text)
		if !errors.Is(err, tt.reason) {
			t.Errorf("%q: error %v, want %v", tt.text, err, tt.reason)
		}
	}
}

func TestFiveFieldsAndTenValuesAccepted(t *testing.T) {
	t.Parallel()
	q, err := bind(t, "leads [first name] is [a] [last name] is [b] [company] is [c] [email] is [d,e,f,g,h] [EMAIL] contains [i,j,k,l,m] [phone] is [5]")
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Fields) != 5 || len(q.Fields[3].Tests) != 10 {
		t.Fatalf("fields %d, email tests %d; want 5 and 10", len(q.Fields), len(q.Fields[3].Tests))
	}
}

func TestUnknownLabelSuggestsClosest(t *testing.T) {
	t.Parallel()
	_, err := bind(t, "leads [compnay] is [x]")
	want := "Leads has no field labelled [compnay]; did you mean [Company] or "
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %v, want it to start with %q", err, want)
	}
	if strings.Contains(err.Error(), "[Salutation]") || strings.Contains(err.Error(), "[Date of Birth]") {
		t.Fatalf("suggested a field that cannot be searched: %v", err)
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	tests := []struct{ text, want string }{
		{"/zcrm leads [phone] starts with [555,234,912],[company] contains [zyl],[email] starts with [peter, smith],[company] is [zylker].",
			"Leads where (Phone starts with 555 or 234 or 912) and (Company contains zyl or is zylker) and (Email starts with peter or smith)"},
		{"leads [LAST  NAME]=[watson] [lead source]=[tradeshow]", "Leads where (Last Name = watson) and (Lead Source = tradeshow)"},
		{"leads zylker", `Leads containing "zylker"`},
		{"contacts", "All Contacts"},
	}
	for _, tt := range tests {
		q, err := bind(t, tt.text)
		if err != nil {
			t.Fatalf("%q: %v", tt.text, err)
		}
		if got := q.Describe(); got != tt.want {
			t.Errorf("%q:\n got %q\nwant %q", tt.text, got, tt.want)
		}
	}
}

func TestBindGroupsAndValues(t *testing.T) {
	t.Parallel()
	q, err := bind(t, "leads [company] contains [ZYL] [annual revenue] >= [50 000] [company] is [Zylker] [email opt out] = [VRAI] [phone] starts with [(555) 01]")
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Fields) != 4 {
		t.Fatalf("fields = %+v, want company, revenue, opt out and phone", q.Fields)
	}
	company, revenue, optOut, phone := q.Fields[0], q.Fields[1], q.Fields[2], q.Fields[3]
	if company.APIName != "Company" || len(company.Tests) != 2 || company.Tests[0].Text != "zyl" || company.Tests[1].Text != "zylker" {
		t.Errorf("company = %+v", company)
	}
	if revenue.Class != filter.Numeric || revenue.Tests[0].Number != 50000 {
		t.Errorf("revenue = %+v", revenue)
	}
	if optOut.Class != filter.Boolean || optOut.Tests[0].Number != 1 {
		t.Errorf("opt out = %+v", optOut)
	}
	if phone.Tests[0].Text != "55501" {
		t.Errorf("phone = %+v, want digits only", phone)
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	text := func(c slash.Comparator, v string) filter.Test { return filter.Test{Comparator: c, Text: v} }
	num := func(c slash.Comparator, v float64) filter.Test { return filter.Test{Comparator: c, Number: v} }
	textCases := []struct {
		test filter.Test
		in   string
		want bool
	}{
		{text(slash.StartsWith, "wat"), "watson", true},
		{text(slash.StartsWith, "son"), "watson", false},
		{text(slash.EndsWith, "son"), "watson", true},
		{text(slash.Contains, "ats"), "watson", true},
		{text(slash.Is, "watson"), "watson", true},
		{text(slash.Equals, "watson"), "watsonville", false},
		{text(slash.Contains, "x"), "", false},
	}
	for _, c := range textCases {
		if got := c.test.MatchText(c.in); got != c.want {
			t.Errorf("%v %q on %q = %v", c.test.Comparator, c.test.Text, c.in, got)
		}
	}
	numCases := []struct {
		test filter.Test
		in   float64
		want bool
	}{
		{num(slash.Greater, 50000), 50000, false},
		{num(slash.Greater, 50000), 50000.5, true},
		{num(slash.Less, 20000), 19999.99, true},
		{num(slash.GreaterOrEqual, 15), 15, true},
		{num(slash.LessOrEqual, 40), 40, true},
		{num(slash.Equals, 1), 1, true},
		{num(slash.LessOrEqual, 40), math.NaN(), false},
		{num(slash.Contains, 40), 40, false},
	}
	for _, c := range numCases {
		if got := c.test.MatchNumber(c.in); got != c.want {
			t.Errorf("%v %v on %v = %v", c.test.Comparator, c.test.Number, c.in, got)
		}
	}
}

func TestBindMisuse(t *testing.T) {
	t.Parallel()
	schemas := seedset.Schemas()
	if _, err := filter.Bind(slash.Command{Kind: slash.KindHelp}, schemas["Leads"]); !errors.Is(err, filter.ErrNotAQuery) {
		t.Errorf("help: %v", err)
	}
	if _, err := filter.Bind(slash.Command{Kind: slash.KindList, Module: "Deals"}, schemas["Leads"]); !errors.Is(err, filter.ErrModuleMismatch) {
		t.Errorf("module mismatch: %v", err)
	}
}

func TestClassOf(t *testing.T) {
	t.Parallel()
	for ft := range crmv1.FieldType_name {
		typ := crmv1.FieldType(ft)
		c := filter.ClassOf(typ)
		switch typ {
		case crmv1.FieldType_FIELD_TYPE_UNSPECIFIED, crmv1.FieldType_FIELD_TYPE_URL, crmv1.FieldType_FIELD_TYPE_DATE,
			crmv1.FieldType_FIELD_TYPE_DATETIME, crmv1.FieldType_FIELD_TYPE_SALUTATION:
			if c != filter.NotSearchable {
				t.Errorf("%v is searchable", typ)
			}
		default:
			if c == filter.NotSearchable {
				t.Errorf("%v is not searchable", typ)
			}
		}
	}
}

// FuzzBind: whatever the text, binding to the seed schemas gives a query
// within the limits or a user-facing refusal; it never panics.
func FuzzBind(f *testing.F) {
	for _, ex := range seedset.Examples() {
		f.Add(ex.Text)
	}
	for _, r := range seedset.Refusals() {
		f.Add(r.Text)
	}
	schemas := seedset.Schemas()
	f.Fuzz(func(t *testing.T, text string) {
		cmd, err := slash.Parse(text)
		if err != nil || cmd.Kind == slash.KindHelp {
			return
		}
		q, err := filter.Bind(cmd, schemas[cmd.Module])
		if err != nil {
			var re *filter.RefusalError
			if !errors.As(err, &re) || re.Message == "" {
				t.Fatalf("Bind(%q): %T %v is not a user-facing refusal", text, err, err)
			}
			return
		}
		if q.Describe() == "" || len(q.Fields) > filter.MaxFields {
			t.Fatalf("Bind(%q): %d fields, description %q", text, len(q.Fields), q.Describe())
		}
		for _, fd := range q.Fields {
			if len(fd.Tests) == 0 || len(fd.Tests) > filter.MaxValuesPerField || fd.Class == filter.NotSearchable {
				t.Fatalf("Bind(%q): field %+v", text, fd)
			}
		}
	})
}
