package slash_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/crmslack/crmslack/services/query/internal/slash"
)

func crit(label string, c slash.Comparator, values ...string) slash.Criterion {
	return slash.Criterion{FieldLabel: label, Comparator: c, Values: values}
}

func equal(a, b slash.Command) bool {
	return a.Kind == b.Kind && a.Module == b.Module && slices.Equal(a.Words, b.Words) &&
		slices.EqualFunc(a.Criteria, b.Criteria, func(x, y slash.Criterion) bool {
			return x.FieldLabel == y.FieldLabel && x.Comparator == y.Comparator && slices.Equal(x.Values, y.Values)
		})
}

func TestParse(t *testing.T) {
	t.Parallel()
	leads := func(cs ...slash.Criterion) slash.Command {
		return slash.Command{Kind: slash.KindCriteria, Module: "Leads", Criteria: cs}
	}
	tests := []struct {
		name, text string
		want       slash.Command
	}{
		{"empty is help", "", slash.Command{Kind: slash.KindHelp}},
		{"bare command is help", "/zcrm", slash.Command{Kind: slash.KindHelp}},
		{"help", "/zcrm help", slash.Command{Kind: slash.KindHelp}},
		{"help any case", "  HELP ", slash.Command{Kind: slash.KindHelp}},
		{"list", "/zcrm leads", slash.Command{Kind: slash.KindList, Module: "Leads"}},
		{"list without the command", "leads", slash.Command{Kind: slash.KindList, Module: "Leads"}},
		{"module any case", "DeAlS", slash.Command{Kind: slash.KindList, Module: "Deals"}},
		{"global search", "/zcrm leads zylker", slash.Command{Kind: slash.KindGlobalSearch, Module: "Leads", Words: []string{"zylker"}}},
		{"global search, several words", "accounts  peter\tsmith ", slash.Command{Kind: slash.KindGlobalSearch, Module: "Accounts", Words: []string{"peter", "smith"}}},
		{"global search unescapes", "leads AT&amp;T", slash.Command{Kind: slash.KindGlobalSearch, Module: "Leads", Words: []string{"AT&T"}}},
		{"equals, no spaces", "/zcrm leads [last name]=[watson]", leads(crit("last name", slash.Equals, "watson"))},
		{"two criteria by space", "/zcrm leads [last name]=[watson] [lead source]=[tradeshow]",
			leads(crit("last name", slash.Equals, "watson"), crit("lead source", slash.Equals, "tradeshow"))},
		{"values trimmed", "/zcrm leads [lead source]=[webform, tradeshow,  cold call ]",
			leads(crit("lead source", slash.Equals, "webform", "tradeshow", "cold call"))},
		{"starts with", "/zcrm contacts [first name] starts with [james]",
			slash.Command{Kind: slash.KindCriteria, Module: "Contacts", Criteria: []slash.Criterion{crit("first name", slash.StartsWith, "james")}}},
		{"begins with", "leads [first name] begins with [ja]", leads(crit("first name", slash.StartsWith, "ja"))},
		{"ends with", "leads [last name] ends with [butler]", leads(crit("last name", slash.EndsWith, "butler"))},
		{"contains", "leads [email] contains [onc]", leads(crit("email", slash.Contains, "onc"))},
		{"greater", "leads [annual revenue] > [50000]", leads(crit("annual revenue", slash.Greater, "50000"))},
		{"less, as Slack escapes it", "deals [amount] &lt; [20000]",
			slash.Command{Kind: slash.KindCriteria, Module: "Deals", Criteria: []slash.Criterion{crit("amount", slash.Less, "20000")}}},
		{"greater or equal, escaped", "leads [discount] &gt;=[15]", leads(crit("discount", slash.GreaterOrEqual, "15"))},
		{"less or equal, no space before the value", "/zcrm leads [age] <=[40]", leads(crit("age", slash.LessOrEqual, "40"))},
		{"is", "leads [email opt out] is [true]", leads(crit("email opt out", slash.Is, "true"))},
		{"french starts", "leads [nom] commence par [wat]", leads(crit("nom", slash.StartsWith, "wat"))},
		{"french ends", "leads [nom] se termine par [son]", leads(crit("nom", slash.EndsWith, "son"))},
		{"french is", "leads [nom] est [watson]", leads(crit("nom", slash.Is, "watson"))},
		{"french contains", "leads [nom] contient [ats]", leads(crit("nom", slash.Contains, "ats"))},
		{"spaces inside a comparator", "leads [a] starts   with [b]", leads(crit("a", slash.StartsWith, "b"))},
		{"label spaces normalised", "leads [  last   name ] is [x]", leads(crit("last name", slash.Is, "x"))},
		{"comma between criteria, no space", "leads [a] is [b],[c] is [d]", leads(crit("a", slash.Is, "b"), crit("c", slash.Is, "d"))},
		{"comma and spaces between criteria", "leads [a] is [b] , [c] is [d]", leads(crit("a", slash.Is, "b"), crit("c", slash.Is, "d"))},
		{"trailing period tolerated", "leads [a] is [b].", leads(crit("a", slash.Is, "b"))},
		{"trailing period and spaces", "leads [a] is [b] . ", leads(crit("a", slash.Is, "b"))},
		{"module glued to a bracket", "leads[a] is [b]", leads(crit("a", slash.Is, "b"))},
		{"the seed's example", "/zcrm leads [phone] starts with [555,234,912],[company] contains [zyl],[email] starts with [peter, smith],[company] is [zylker].",
			leads(crit("phone", slash.StartsWith, "555", "234", "912"), crit("company", slash.Contains, "zyl"),
				crit("email", slash.StartsWith, "peter", "smith"), crit("company", slash.Is, "zylker"))},
		{"non-breaking spaces", "leads\u00a0[a]\u00a0is\u00a0[b]", leads(crit("a", slash.Is, "b"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := slash.Parse(tt.text)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.text, err)
			}
			if !equal(got, tt.want) {
				t.Fatalf("Parse(%q) = %+v, want %+v", tt.text, got, tt.want)
			}
		})
	}
}

func TestParseRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, text string
		reason     error
		column     int
		contains   string
	}{
		{"singular lead", "/zcrm lead [last name]=[watson]", slash.ErrSingularModule, 7, "did you mean leads?"},
		{"singular deal, any case", "Deal", slash.ErrSingularModule, 1, "did you mean deals?"},
		{"tasks", "tasks [subject] contains [call]", slash.ErrUnsupportedModule, 1, `"tasks" is not a module`},
		{"a word where the module goes", "zylker", slash.ErrUnsupportedModule, 1, "leads, contacts, accounts or deals"},
		{"brackets before the module", "[a] is [b]", slash.ErrSyntax, 1, "starts with a module name"},
		{"upper-case IS", "leads [last name] IS [watson]", slash.ErrComparatorCase, 19, `write "is", not "IS"`},
		{"capitalised Starts With", "leads [a] Starts With [b]", slash.ErrComparatorCase, 11, "case-sensitive"},
		{"unknown comparator", "leads [a] like [b]", slash.ErrComparator, 11, `unknown comparator "like"`},
		{"double equals", "leads [a] == [b]", slash.ErrComparator, 11, `"=="`},
		{"missing comparator", "leads [a] [b]", slash.ErrComparator, 11, "missing comparator"},
		{"unclosed label", "leads [last name", slash.ErrUnbalanced, 7, "never closed"},
		{"unclosed value", "leads [a] is [b", slash.ErrUnbalanced, 14, "never closed"},
		{"nested bracket", "leads [a] is [b [c]]", slash.ErrUnbalanced, 14, "never closed"},
		{"stray closing bracket", "leads [a] is ] [b]", slash.ErrUnbalanced, 14, "closes no ["},
		{"stray closing after words", "leads zylker]", slash.ErrUnbalanced, 13, "closes no ["},
		{"value without brackets", "leads [a] is b", slash.ErrSyntax, 11, "must be in brackets"},
		{"words then criteria", "leads zylker [a] is [b]", slash.ErrSyntax, 14, "right after the module name"},
		{"empty label", "leads [ ] is [b]", slash.ErrEmpty, 7, "empty field label"},
		{"empty value", "leads [a] is []", slash.ErrEmpty, 15, "empty value"},
		{"empty value between commas", "leads [a] is [b,,c]", slash.ErrEmpty, 17, "empty value"},
		{"trailing comma in values", "leads [a] is [b, ]", slash.ErrEmpty, 17, "empty value"},
		{"trailing comma after criteria", "leads [a] is [b],", slash.ErrSyntax, 18, "another [field label]"},
		{"junk after criteria", "leads [a] is [b] and [c] is [d]", slash.ErrSyntax, 18, "another [field label]"},
		{"two periods", "leads [a] is [b]..", slash.ErrSyntax, 17, "another [field label]"},
		{"column counts characters", "leads [é] is [b", slash.ErrUnbalanced, 14, "never closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd, err := slash.Parse(tt.text)
			var pe *slash.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) = %+v, %v; want a *ParseError", tt.text, cmd, err)
			}
			if !errors.Is(err, tt.reason) {
				t.Errorf("reason = %v, want %v", pe.Reason, tt.reason)
			}
			if pe.Column != tt.column {
				t.Errorf("column = %d, want %d (%s)", pe.Column, tt.column, pe.Message)
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("message %q does not contain %q", err.Error(), tt.contains)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	tests := []struct{ text, want string }{
		{"help", "Help"},
		{"leads", "All Leads"},
		{"leads peter smith", `Leads containing "peter" and "smith"`},
		{"/zcrm leads [phone] starts with [555,234,912],[company] contains [zyl],[email] starts with [peter, smith],[COMPANY] is [zylker].",
			"Leads where (phone starts with 555 or 234 or 912) and (company contains zyl or is zylker) and (email starts with peter or smith)"},
		{"deals [amount] &lt; [20000]", "Deals where (amount < 20000)"},
	}
	for _, tt := range tests {
		cmd, err := slash.Parse(tt.text)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.text, err)
		}
		if got := cmd.Describe(); got != tt.want {
			t.Errorf("Describe(%q) =\n %q, want\n %q", tt.text, got, tt.want)
		}
	}
}

func TestStringRoundTrip(t *testing.T) {
	t.Parallel()
	for _, text := range []string{
		"help", "leads", "contacts james AT&T <x>",
		"/zcrm leads [phone] starts with [555,234,912],[company] contains [zyl],[email] starts with [peter, smith],[company] is [zylker].",
		"deals [amount] < [20000] [discount] >= [15] [a&b] = [x<y, &lt;]",
	} {
		cmd, err := slash.Parse(text)
		if err != nil {
			t.Fatalf("Parse(%q): %v", text, err)
		}
		again, err := slash.Parse(cmd.String())
		if err != nil || !equal(cmd, again) {
			t.Errorf("Parse(%q) = %+v; Parse(String() = %q) = %+v, %v", text, cmd, cmd.String(), again, err)
		}
	}
}

// FuzzParse: no input panics; every input gives a command or a ParseError
// with a message and a column inside the text; an accepted command survives
// a round trip through String and describes itself.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "help", "/zcrm leads", "leads zylker", "lead", "tasks [a] is [b]",
		"/zcrm leads [phone] starts with [555,234,912],[company] contains [zyl],[email] starts with [peter, smith],[company] is [zylker].",
		"leads [age] <=[40]", "deals [amount] &lt; [20000]", "leads [a] IS [b]", "leads [a] is [b", "leads [a] is [,]",
		"contacts [nom] se termine par [butler]", "leads [é]\u00a0est [ü]", "leads [a] is [b]. [c]", "\xff[", "/zcrm\xffleads",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		cmd, err := slash.Parse(text)
		if err != nil {
			var pe *slash.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) error %T %v is not a *ParseError", text, err, err)
			}
			if pe.Message == "" || pe.Reason == nil {
				t.Fatalf("Parse(%q): empty message or reason: %+v", text, pe)
			}
			if pe.Column < 1 || pe.Column > utf8.RuneCountInString(text)+1 {
				t.Fatalf("Parse(%q): column %d outside the text", text, pe.Column)
			}
			return
		}
		if cmd.Describe() == "" {
			t.Fatalf("Parse(%q): empty description", text)
		}
		if cmd.Kind != slash.KindHelp && !slices.Contains(slash.Modules, cmd.Module) {
			t.Fatalf("Parse(%q): module %q", text, cmd.Module)
		}
		for _, c := range cmd.Criteria {
			if c.FieldLabel == "" || len(c.Values) == 0 || slices.Contains(c.Values, "") {
				t.Fatalf("Parse(%q): empty label or value in %+v", text, c)
			}
		}
		again, err := slash.Parse(cmd.String())
		if err != nil || !equal(cmd, again) {
			t.Fatalf("Parse(%q) = %+v; Parse(%q) = %+v, %v", text, cmd, cmd.String(), again, err)
		}
	})
}
