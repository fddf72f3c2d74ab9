package template

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"

	"github.com/crmslack/crmslack/services/workflows/internal/valuefmt"
)

func dealSchema() *crmv1.ModuleSchema {
	return &crmv1.ModuleSchema{
		Module: "Deals", SingularLabel: "Deal", PluralLabel: "Deals", DisplayField: "Deal_Name",
		Fields: []*crmv1.FieldMeta{
			{ApiName: "Deal_Name", Label: "Deal Name", Type: crmv1.FieldType_FIELD_TYPE_SINGLE_LINE},
			{ApiName: "Amount", Label: "Amount", Type: crmv1.FieldType_FIELD_TYPE_CURRENCY, CurrencyCode: "EUR"},
			{ApiName: "Stage", Label: "Stage", Type: crmv1.FieldType_FIELD_TYPE_PICKLIST},
			{ApiName: "Closing_Date", Label: "Closing Date", Type: crmv1.FieldType_FIELD_TYPE_DATE},
			{ApiName: "Account_Name", Label: "Account Name", Type: crmv1.FieldType_FIELD_TYPE_LOOKUP},
			{ApiName: "Probability", Label: "Probability (%)", Type: crmv1.FieldType_FIELD_TYPE_PERCENT},
		},
	}
}

func deal(name string) *crmv1.Record {
	return &crmv1.Record{
		Module: "Deals", Id: "d1",
		Owner: &commonv1.CrmUserRef{Id: "u1", Name: "Alice Johnson", Email: "alice@acme.example"},
		Fields: map[string]*crmv1.FieldValue{
			"Deal_Name":    {Kind: &crmv1.FieldValue_Text{Text: name}},
			"Amount":       {Kind: &crmv1.FieldValue_Number{Number: 12500}},
			"Closing_Date": {Kind: &crmv1.FieldValue_Date{Date: "2026-12-15"}},
			"Account_Name": {Kind: &crmv1.FieldValue_Lookup{Lookup: &crmv1.LookupValue{Id: "a1", Name: "Zylker"}}},
		},
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		src  string
		tags []string
		lits []string
		err  string
	}{
		{src: "Won: #{Deals.Deal Name}!", tags: []string{"#{Deals.Deal Name}"}, lits: []string{"Won: ", "!"}},
		{src: `price \#{not a tag}`, lits: []string{"price #{not a tag}"}},
		{src: "# hash and {braces}", lits: []string{"# hash and {braces}"}},
		{src: "#{ Deals . Amount }", tags: []string{"#{Deals.Amount}"}},
		{src: "#{Deals.No. of Employees}", tags: []string{"#{Deals.No. of Employees}"}},
		{src: "oops #{Deals.Amount", err: "line 1, column 6 is not closed"},
		{src: "a\nb #{Deals.Amount\n}", err: "line 2, column 3 is not closed"},
		{src: "#{}", err: "it is empty"},
		{src: "#{Amount}", err: `"Amount" names no field`},
		{src: "#{Deals.#{x}", err: "cannot be nested"},
		{src: "\xff", err: "not valid UTF-8"},
		{src: strings.Repeat("x", MaxSource+1), err: "at most"},
	} {
		tpl, err := Parse(tc.src)
		if tc.err != "" {
			if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q) = %v, want an error with %q", tc.src, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.src, err)
			continue
		}
		var tags, lits []string
		for _, p := range tpl.Parts {
			if p.Tag != nil {
				tags = append(tags, p.Tag.String())
			} else {
				lits = append(lits, p.Literal)
			}
		}
		if strings.Join(tags, "|") != strings.Join(tc.tags, "|") || strings.Join(lits, "|") != strings.Join(tc.lits, "|") {
			t.Errorf("Parse(%q): tags %q literals %q", tc.src, tags, lits)
		}
	}
}

func TestBind(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		src    string
		err    error
		detail string
	}{
		{src: "#{Deals.Deal Name} #{deals.closing   DATE} #{Deal.Amount} #{Deals.Deal_Name} #{Owner.Full Name} #{Owner.Email} #{Record.Link}"},
		{src: "#{Deals.Amout}", err: ErrUnknownField, detail: "did you mean #{Deals.Amount}"},
		{src: "#{Deals.Closing Dat}", err: ErrUnknownField, detail: "did you mean #{Deals.Closing Date}"},
		{src: "#{Leads.Amount}", err: ErrWrongModule, detail: "did you mean #{Deals.Amount}"},
		{src: "#{Owner.Phone}", err: ErrUnknownField, detail: "Full Name and an Email"},
		{src: "#{Record.Id}", err: ErrUnknownField, detail: "#{Record.Link}"},
	} {
		tpl, err := Parse(tc.src)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Bind(tpl, dealSchema())
		if tc.err == nil {
			if err != nil {
				t.Errorf("Bind(%q): %v", tc.src, err)
			}
			continue
		}
		var be *BindError
		if !errors.Is(err, tc.err) || !errors.As(err, &be) || !strings.Contains(err.Error(), tc.detail) {
			t.Errorf("Bind(%q) = %v, want %v with %q", tc.src, err, tc.err, tc.detail)
		}
	}
}

func bind(t testing.TB, src string) Bound {
	t.Helper()
	tpl, err := Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Bind(tpl, dealSchema())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRender(t *testing.T) {
	t.Parallel()
	fr, _ := valuefmt.New("fr-FR", "", "")
	for _, tc := range []struct {
		name, src, dealName string
		format              valuefmt.Format
		link                string
		max                 int
		want                string
	}{
		{name: "values by type", src: "*Won* #{Deals.Deal Name}: #{Deals.Amount}, closes #{Deals.Closing Date} with #{Deals.Account Name}",
			dealName: "Q4 licences", want: "*Won* Q4 licences: €12,500.00, closes Dec 15, 2026 with Zylker"},
		{name: "org locale", src: "#{Deals.Amount}", format: fr, want: "12\u00a0500,00\u00a0€"},
		{name: "missing values", src: "stage #{Deals.Stage}, probability #{Deals.Probability (%)}, link #{Record.Link}",
			want: "stage —, probability —, link —"},
		{name: "owner and link", src: "#{Owner.Full Name} <#{Owner.Email}> #{Record.Link}", link: "https://crm.example/Deals/d1",
			want: "Alice Johnson <alice@acme.example> <https://crm.example/Deals/d1|Open in CRM>"},
		{name: "mentions and links in values are escaped", src: "#{Deals.Deal Name}", dealName: "<!channel> <@U123> <https://evil|x> & co",
			want: "&lt;!channel&gt; &lt;@U123&gt; &lt;https://evil|x&gt; &amp; co"},
		{name: "formatting in values is neutralised", src: "_#{Deals.Deal Name}_", dealName: "*bold* `code` ~gone~ snake_case",
			want: "_∗bold∗ ˋcodeˋ ∼gone∼ snake_case_"},
		{name: "the admin's mrkdwn is kept", src: "<!here> *#{Deals.Deal Name}* &amp; <https://x.example|docs>", dealName: "A",
			want: "<!here> *A* &amp; <https://x.example|docs>"},
		{name: "a link that would end its tag early is no link", src: "#{Record.Link}", link: "https://crm.example/a><!channel>", want: "—"},
		{name: "a link's & is escaped", src: "#{Record.Link}", link: "https://crm.example/?a=1&b=2", want: "<https://crm.example/?a=1&amp;b=2|Open in CRM>"},
		{name: "cut visibly", src: "#{Deals.Deal Name}", dealName: strings.Repeat("a", 20), max: 10, want: "aaaaaaaaa…"},
		{name: "never inside an entity", src: "#{Deals.Deal Name}", dealName: "abcdefgh&z", max: 10, want: "abcdefgh…"},
		{name: "never inside a link", src: "see #{Record.Link}", link: "https://crm.example/Deals/d1", max: 20, want: "see …"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			max := tc.max
			if max == 0 {
				max = 3000
			}
			got := Render(bind(t, tc.src), Input{Record: deal(tc.dealName), Schema: dealSchema(), Format: tc.format, Link: tc.link, Max: max})
			if got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
			if n := utf8.RuneCountInString(got); n > max {
				t.Errorf("%d runes, max %d", n, max)
			}
		})
	}
}

func TestCheckFits(t *testing.T) {
	t.Parallel()
	if err := bind(t, strings.Repeat("x", 2990)+"#{Deals.Amount}").CheckFits(3000); err != nil {
		t.Errorf("a template that fits: %v", err)
	}
	if err := bind(t, strings.Repeat("x", 3000)+"#{Deals.Amount}").CheckFits(3000); !errors.Is(err, ErrTooLong) {
		t.Errorf("a template that cannot fit: %v", err)
	}
}

func TestCanonicalRebinds(t *testing.T) {
	t.Parallel()
	b := bind(t, `Won \#{x} #{deals.deal  name} #{Deals.Amount} #{Owner.Email} #{Record.Link}`)
	c := b.Canonical()
	if want := `Won \#{x} #{Deals.Deal_Name} #{Deals.Amount} #{Owner.Email} #{Record.Link}`; c != want {
		t.Fatalf("Canonical = %q, want %q", c, want)
	}
	rb, err := Rebind(c, "Deals")
	if err != nil {
		t.Fatal(err)
	}
	in := Input{Record: deal("Q4"), Schema: dealSchema(), Link: "https://crm.example/d1", Max: 3000}
	if got, want := Render(rb, in), Render(b, in); got != want {
		t.Errorf("rebound renders %q, bound %q", got, want)
	}
}
