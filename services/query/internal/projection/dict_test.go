package projection

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	"github.com/crmslack/crmslack/services/query/internal/filter"
	"github.com/crmslack/crmslack/services/query/internal/slash"
)

// framings are the four ways a needle is framed, with the plain test each
// stands for.
var framings = []struct {
	name        string
	lead, trail bool
	test        func(v, needle []byte) bool
}{
	{"contains", false, false, bytes.Contains},
	{"starts with", true, false, bytes.HasPrefix},
	{"ends with", false, true, bytes.HasSuffix},
	{"is", true, true, bytes.Equal},
}

// naiveHits: the live values (by number) a needle is found in, value by
// value.
func naiveHits(d *dict, needle string, test func(v, needle []byte) bool) []int {
	var out []int
	for k := 1; k < d.len(); k++ {
		if d.refs[k] > 0 && test(d.value(int32(k)), []byte(needle)) {
			out = append(out, k)
		}
	}
	return out
}

// liveHits: the live values among hits.
func liveHits(d *dict, hits []byte) []int {
	var out []int
	for k, h := range hits {
		if h != 0 && d.refs[k] > 0 && k != 0 {
			out = append(out, k)
		}
	}
	return out
}

// matchBoth runs p both ways a dict can (leaping to a rare byte, and
// testing 8 positions at a time), whichever the byte counts would pick.
func matchBoth(d *dict, p pattern) (sparse, dense []byte) {
	j1, j2, ok := d.rare(p.b)
	if p.none || !ok {
		return nil, nil
	}
	fs := finder{d: d, pat: p.b, shift: p.shift}
	fs.sparse(j1, j2)
	if j2 < 0 {
		return fs.hits, fs.hits
	}
	fd := finder{d: d, pat: p.b, shift: p.shift}
	fd.dense(j1, j2)
	return fs.hits, fd.hits
}

// randomText draws from a small alphabet, so needles are found often, with
// the bytes around the separator (0xFE, 0x00) and multi-byte characters.
func randomText(rng *rand.Rand, max int) string {
	alphabet := []string{"a", "b", "c", "ab", "\x00", "\xfe", "é", "ß", "i̇", "5", "55", " "}
	var sb strings.Builder
	for range rng.IntN(max + 1) {
		sb.WriteString(alphabet[rng.IntN(len(alphabet))])
	}
	return sb.String()
}

// TestDictMatchAgreesWithNaive: every framing, found by either search,
// gives exactly the live values a value-by-value test gives, while values
// come and go and the arena is rebuilt.
func TestDictMatchAgreesWithNaive(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	d := new(dict)
	*d = newDict()
	var held []int32 // one entry per row holding a value
	for round := range 300 {
		for range rng.IntN(20) {
			held = append(held, d.intern(randomText(rng, 6)))
		}
		for range rng.IntN(15) {
			if len(held) == 0 {
				break
			}
			i := rng.IntN(len(held))
			d.release(held[i])
			held = slices.Delete(held, i, i+1)
		}
		if round%7 == 0 && d.wasteful(0) {
			renum := d.compact()
			for i, k := range held {
				held[i] = renum[k]
			}
		}
		for range 5 {
			needle := randomText(rng, 3)
			if needle == "" {
				continue
			}
			for _, f := range framings {
				want := naiveHits(d, needle, f.test)
				sparse, dense := matchBoth(d, frame(needle, f.lead, f.trail))
				if got := liveHits(d, sparse); !slices.Equal(got, want) {
					t.Fatalf("round %d: %s %q (leaping): %v, want %v", round, f.name, needle, got, want)
				}
				if got := liveHits(d, dense); !slices.Equal(got, want) {
					t.Fatalf("round %d: %s %q (word-wide): %v, want %v", round, f.name, needle, got, want)
				}
				if p := frame(needle, f.lead, f.trail); p.lead || p.trail {
					if got := liveHits(d, d.anchored(p, nil)); !slices.Equal(got, want) {
						t.Fatalf("round %d: %s %q (anchored): %v, want %v", round, f.name, needle, got, want)
					}
				}
				if got := liveHits(d, d.match(frame(needle, f.lead, f.trail), nil)); !slices.Equal(got, want) {
					t.Fatalf("round %d: %s %q (chosen way): %v, want %v", round, f.name, needle, got, want)
				}
			}
		}
	}
}

// FuzzDictMatch: values split from one string at '|', one needle, every
// framing.
func FuzzDictMatch(f *testing.F) {
	f.Add("zylker|zylkerton labs|acme", "zyl")
	f.Add("555-0101|(555) 0101|555", "555")
	f.Add("a\x00b|ab|b", "b")
	f.Add("aaaaaaaaaaaaaaaaaaaa|aaaa", "aaa")
	f.Fuzz(func(t *testing.T, values, needle string) {
		if needle == "" || strings.IndexByte(needle, sep) >= 0 {
			return
		}
		d := new(dict)
		*d = newDict()
		for v := range strings.SplitSeq(values, "|") {
			if strings.IndexByte(v, sep) < 0 {
				d.intern(v)
			}
		}
		for _, fr := range framings {
			want := naiveHits(d, needle, fr.test)
			sparse, dense := matchBoth(d, frame(needle, fr.lead, fr.trail))
			if got := liveHits(d, sparse); !slices.Equal(got, want) {
				t.Fatalf("%s %q (leaping): %v, want %v", fr.name, needle, got, want)
			}
			if got := liveHits(d, dense); !slices.Equal(got, want) {
				t.Fatalf("%s %q (word-wide): %v, want %v", fr.name, needle, got, want)
			}
			if p := frame(needle, fr.lead, fr.trail); p.lead || p.trail {
				if got := liveHits(d, d.anchored(p, nil)); !slices.Equal(got, want) {
					t.Fatalf("%s %q (anchored): %v, want %v", fr.name, needle, got, want)
				}
			}
		}
	})
}

// TestDictInterning: a value is stored once however many rows hold it; a
// dead one comes back under its number; a rebuild drops only dead values
// and renumbers the rest consistently.
func TestDictInterning(t *testing.T) {
	t.Parallel()
	d := new(dict)
	*d = newDict()
	a, b := d.intern("acme"), d.intern("zylker")
	if again := d.intern("acme"); again != a || d.refs[a] != 2 {
		t.Fatalf("acme twice: %d and %d, %d rows", a, again, d.refs[a])
	}
	if d.intern("") != 0 || d.intern("") != 0 {
		t.Fatal(`"" is not value 0`)
	}
	d.release(b)
	if d.dead != len("zylker")+1 || d.freq['z'] != 0 {
		t.Fatalf("zylker released: dead %d, %d z's counted", d.dead, d.freq['z'])
	}
	if d.intern("zylker") != b || d.dead != 0 || d.freq['z'] != 1 {
		t.Fatal("zylker did not come back under its number")
	}
	for i := range 100 { // enough values to grow the index
		d.intern(fmt.Sprint("v", i))
	}
	d.release(b)
	renum := d.compact()
	if renum[b] != 0 || string(d.value(renum[a])) != "acme" || d.refs[renum[a]] != 2 || d.dead != 0 {
		t.Fatalf("after compact: zylker → %d, acme → %q with %d rows, %d dead", renum[b], d.value(renum[a]), d.refs[renum[a]], d.dead)
	}
	if k := d.intern("v42"); string(d.value(k)) != "v42" || d.refs[k] != 2 {
		t.Fatalf("v42 after compact: %q, %d rows", d.value(k), d.refs[k])
	}
	if k := d.intern("zylker"); d.refs[k] != 1 || string(d.value(k)) != "zylker" {
		t.Fatal("zylker not added anew after compact")
	}
}

// TestSeparatorInAValue: 0xFF cannot reach a dict (see sep), but if it did
// the arena's framing would hold: it is stored as 0xFE, which no folded
// needle holds either, and the values around it stay apart.
func TestSeparatorInAValue(t *testing.T) {
	t.Parallel()
	d := new(dict)
	*d = newDict()
	k := d.intern("a\xffb")
	d.intern("bc")
	if got := string(d.value(k)); got != "a\xfeb" {
		t.Fatalf("stored %q", got)
	}
	for _, tc := range []struct {
		needle      string
		lead, trail bool
		want        []int
	}{
		{"a", false, false, []int{1}},
		{"b", true, false, []int{2}}, // not the b after the stray byte
		{"b", false, true, []int{1}},
		{"bc", false, false, []int{2}},
		{"\xff", false, false, nil},
		{"b\xffb", false, false, nil},
		{"a\xfeb", true, true, []int{1}},
	} {
		if got := liveHits(d, d.match(frame(tc.needle, tc.lead, tc.trail), nil)); !slices.Equal(got, tc.want) {
			t.Errorf("%q lead %v trail %v: %v, want %v", tc.needle, tc.lead, tc.trail, got, tc.want)
		}
	}
}

// FuzzFoldNeverYieldsSeparator: what the projection stores and what a
// query carries is filter.Fold's or strings.ToLower's output, and neither
// ever holds sep, whatever the input, so no match can run from one value
// into the next.
func FuzzFoldNeverYieldsSeparator(f *testing.F) {
	for _, s := range []string{"Straße", "İstanbul", "\xff", "a\xffb", "\xc3", "(555) 0101", "ǅ\u212a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, typ := range []crmv1.FieldType{crmv1.FieldType_FIELD_TYPE_SINGLE_LINE, crmv1.FieldType_FIELD_TYPE_PHONE} {
			if folded := filter.Fold(typ, s); strings.IndexByte(folded, sep) >= 0 {
				t.Fatalf("Fold(%v, %q) = %q", typ, s, folded)
			}
		}
		if lower := strings.ToLower(s); strings.IndexByte(lower, sep) >= 0 || (utf8.ValidString(s) && !utf8.ValidString(lower)) {
			t.Fatalf("ToLower(%q) = %q", s, lower)
		}
	})
}

func TestRowsOf(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 63, 64, 65, 200, 1000} {
		for _, values := range []int{1, 5, 64, 65, 300} {
			of := make([]int32, n)
			for i := range of {
				of[i] = int32(rng.IntN(values))
			}
			hits := make([]byte, values)
			for k := range hits {
				hits[k] = byte(rng.IntN(2))
			}
			m := make([]uint64, (n+63)/64)
			rowsOf(of, hits, m)
			for i, k := range of {
				if got := m[i>>6]>>(i&63)&1 == 1; got != (hits[k] == 1) {
					t.Fatalf("%d rows, %d values: row %d (value %d, hit %d) set %v", n, values, i, k, hits[k], got)
				}
			}
			if n%64 != 0 && m[len(m)-1]>>(n%64) != 0 {
				t.Fatalf("%d rows: bits set past the last row", n)
			}
		}
	}
}

// TestNumberRangesAgreeWithFilter: every comparator against every pair of
// awkward numbers, by key ranges (one loop over a column, and one row at
// a time) and by filter.Test.MatchNumber.
func TestNumberRangesAgreeWithFilter(t *testing.T) {
	t.Parallel()
	nums := []float64{math.Inf(-1), -math.MaxFloat64, -1e21, -2, -1, -math.SmallestNonzeroFloat64, math.Copysign(0, -1), 0,
		math.SmallestNonzeroFloat64, 0.5, 1, 1.5, 2, 1e21, math.MaxFloat64, math.Inf(1), math.NaN()}
	keys := make([]uint64, len(nums))
	for i, x := range nums {
		keys[i] = numKey(x)
		if i > 0 && !math.IsNaN(x) && x != 0 && keys[i] <= keys[i-1] {
			t.Fatalf("numKey(%v) = %#x, not above numKey(%v) = %#x", x, keys[i], nums[i-1], keys[i-1])
		}
	}
	for c := slash.StartsWith; c <= slash.LessOrEqual; c++ {
		for _, v := range nums {
			test := filter.Test{Comparator: c, Number: v}
			r := rangeOf(&test)
			m := make([]uint64, 1)
			matchNumbers(keys, r, m)
			for i, x := range nums {
				want := test.MatchNumber(x)
				if got := r.has(keys[i]); got != want {
					t.Errorf("%v %v on %v: range says %v, filter %v", c, v, x, got, want)
				}
				if got := m[0]>>i&1 == 1; got != want {
					t.Errorf("%v %v on %v: column pass says %v, filter %v", c, v, x, got, want)
				}
			}
		}
	}
}
