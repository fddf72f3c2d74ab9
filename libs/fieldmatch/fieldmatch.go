// Package fieldmatch matches what people type for a CRM field (a label such
// as "closing  date", or an API name) against a module's fields, and names
// the closest fields when nothing matches. Slash-command criteria and
// workflow templates bind field names the same way through it.
package fieldmatch

import (
	"slices"
	"strings"
)

// Normalize folds a label for comparison: lower case, runs of white space
// as one space, no leading or trailing space.
func Normalize(s string) string {
	return strings.ToLower(strings.Join(strings.Fields(s), " "))
}

// SameLabel reports whether two labels match case-insensitively, ignoring
// repeated spaces.
func SameLabel(a, b string) bool { return Normalize(a) == Normalize(b) }

// Closest returns up to n of candidates closest to name by edit distance
// over the normalized forms, closest first; ties keep the candidates' order.
func Closest(name string, candidates []string, n int) []string {
	type cand struct {
		s    string
		dist int
	}
	want := []rune(Normalize(name))
	cands := make([]cand, 0, len(candidates))
	for _, c := range candidates {
		cands = append(cands, cand{c, EditDistance(want, []rune(Normalize(c)))})
	}
	slices.SortStableFunc(cands, func(a, b cand) int { return a.dist - b.dist })
	out := make([]string, 0, min(n, len(cands)))
	for _, c := range cands[:min(n, len(cands))] {
		out = append(out, c.s)
	}
	return out
}

// EditDistance is the Levenshtein distance, in runes.
func EditDistance(a, b []rune) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
