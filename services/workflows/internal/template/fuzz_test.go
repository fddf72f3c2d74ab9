package template

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzParse(f *testing.F) {
	for _, s := range []string{"Won #{Deals.Deal Name}!", `\#{x}`, "#{", "#{}", "#{a.b}#{c.d}", "a\n#{x.y\n}", "\\\\#{Deals.Amount}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		tpl, err := Parse(src)
		if err != nil {
			return
		}
		again, err := Parse(tpl.String())
		if err != nil {
			t.Fatalf("String() of a parsed template does not parse: %q: %v", tpl.String(), err)
		}
		// A literal ending in a backslash right before a tag cannot be
		// written back (it would escape the tag); everything else round-trips.
		if !strings.Contains(tpl.String(), `\#{`) && len(again.Parts) != len(tpl.Parts) {
			t.Fatalf("round trip changed %q: %d parts, then %d", src, len(tpl.Parts), len(again.Parts))
		}
	})
}

// FuzzRender fills a fixed template with a fuzzed value and checks what
// Slack would see: valid UTF-8 within the limit, and no markup from the
// value: no "<", ">" or bare "&", and no formatting mark that could act.
func FuzzRender(f *testing.F) {
	for _, s := range []string{"<!channel>", "a & b", "*bold*", "_x_", "`c`", "~s~", "\xff\xfe", "&amp;", strings.Repeat("é", 50)} {
		f.Add(s, 40)
	}
	b := bind(f, "#{Deals.Deal Name}")
	f.Fuzz(func(t *testing.T, value string, max int) {
		if max < 2 || max > 5000 {
			return
		}
		rec := deal(value)
		out := Render(b, Input{Record: rec, Schema: dealSchema(), Max: max})
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8: %q", out)
		}
		if n := utf8.RuneCountInString(out); n > max {
			t.Fatalf("%d runes, max %d: %q", n, max, out)
		}
		if strings.ContainsAny(out, "<>") {
			t.Fatalf("markup from a value: %q", out)
		}
		for i := 0; i < len(out); i++ {
			if out[i] == '&' && !hasEntityAt(out[i:]) {
				t.Fatalf("bare & at %d: %q", i, out)
			}
		}
		runes := []rune(out)
		for i, r := range runes {
			if strings.ContainsRune("*_~`", r) && (i == 0 || i == len(runes)-1 || !wordRune(runes[i-1]) || !wordRune(runes[i+1])) {
				t.Fatalf("a formatting mark at a word boundary: %q", out)
			}
		}
	})
}

func hasEntityAt(s string) bool {
	return strings.HasPrefix(s, "&amp;") || strings.HasPrefix(s, "&lt;") || strings.HasPrefix(s, "&gt;")
}
