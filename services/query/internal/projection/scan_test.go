package projection

import (
	"testing"

	"github.com/crmslack/crmslack/services/query/internal/filter"
	"github.com/crmslack/crmslack/services/query/internal/slash"
)

// TestCellMatchAgreesWithFilter: the inline-head shortcuts give the same
// answer as filter's plain string matching, around the 8-byte boundary too.
func TestCellMatchAgreesWithFilter(t *testing.T) {
	t.Parallel()
	texts := []string{"", "a", "ab", "abc", "abcdefg", "abcdefgh", "abcdefghi", "abcdefghij", "abcdefgx", "abd", "b", "ab\x00", "é", "éé"}
	for _, cmp := range []slash.Comparator{slash.StartsWith, slash.EndsWith, slash.Is, slash.Equals, slash.Contains} {
		for _, v := range texts[1:] { // values are never empty
			ft := newFieldScan(&filter.Field{Class: filter.TextLike, Tests: []filter.Test{{Comparator: cmp, Text: v}}}, 0, nil)
			for _, s := range texts {
				c := cell{text: s, head: head(s)}
				if got, want := ft.tests[0].matchCell(&c), ft.tests[0].MatchText(s); got != want {
					t.Errorf("%v %q on %q: cell says %v, filter %v", cmp, v, s, got, want)
				}
			}
		}
	}
}

func TestBeforeOrdersLikeStrings(t *testing.T) {
	t.Parallel()
	keys := []string{"", "a", "ab", "ab\x00", "abcdefgh", "abcdefghi", "abcdefgi", "b", "zz"}
	for i, a := range keys {
		for j, b := range keys {
			ra, rb := &ranked{sortKey: a, sortHead: head(a), id: "1"}, &ranked{sortKey: b, sortHead: head(b), id: "1"}
			if got, want := before(ra, rb), i < j; got != want {
				t.Errorf("before(%q, %q) = %v", a, b, got)
			}
		}
	}
}
