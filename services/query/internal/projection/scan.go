package projection

import (
	"bytes"
	"cmp"
	"math/bits"
	"slices"
	"strings"

	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	"github.com/crmslack/crmslack/services/query/internal/filter"
	"github.com/crmslack/crmslack/services/query/internal/slash"
)

// plan says how a table answers a criterion: by the cheaper way, or (in
// tests) always one of the two.
type plan int

const (
	planCheaper plan = iota
	planScan         // every row at once: a pass over a whole column or dict
	planProbe        // the rows still in, one at a time, once some criterion has run
)

// scan returns the first limit matching rows in display order and the
// number of matches. The caller holds the read lock.
//
// Each field and each word is a criterion, and a criterion yields a bitset
// of rows; the bitsets are AND'ed. Criteria run cheapest first (by an
// estimate of a full pass), and a costly one that comes after others have
// left few rows in reads just those rows' values instead of a whole
// column. An empty intersection ends the scan early.
func (t *table) scan(q *filter.Query, limit int) ([]ranked, int) {
	n := len(t.rows)
	type step struct {
		field *fieldScan // or
		word  string
		cost  float64 // of a full pass
	}
	steps := make([]step, 0, len(q.Fields)+len(q.Words))
	for i := range q.Fields {
		slot, ok := t.slots[q.Fields[i].APIName]
		if !ok {
			return nil, 0 // a field no record of this table has: nothing matches
		}
		f := newFieldScan(&q.Fields[i], slot, &t.cols[slot])
		steps = append(steps, step{field: &f, cost: f.scanCost(n)})
	}
	for _, w := range q.Words {
		steps = append(steps, step{word: w, cost: t.wordCost(w)})
	}
	slices.SortStableFunc(steps, func(a, b step) int { return cmp.Compare(a.cost, b.cost) })

	var sel, m []uint64 // sel: the rows still in, nil for all of them
	in := n             // how many
	for _, s := range steps {
		m = zeroed(m, n)
		if s.field != nil {
			s.field.run(m, sel, in, t.plan)
		} else {
			t.wordRun(s.word, m, sel, in)
		}
		if sel == nil {
			sel, m = m, nil
		} else {
			and(sel, m)
		}
		if in = count(sel); in == 0 {
			return nil, 0
		}
	}
	return t.top(sel, limit)
}

// probe tells whether to read the in rows of sel one at a time rather
// than make a full pass.
func probe(p plan, sel []uint64, in int, scanCost, perRow float64) bool {
	switch {
	case sel == nil:
		return false
	case p == planCheaper:
		return float64(in)*perRow < scanCost
	}
	return p == planProbe
}

// wordCost estimates a full pass for a global search word.
func (t *table) wordCost(w string) float64 {
	switch {
	case w == "":
		return 0
	case strings.IndexByte(w, 0) >= 0:
		return float64(len(t.rows)) * 1000 // one row at a time, last
	}
	p := frame(w, false, false)
	c := 0.0
	for i := range t.cols {
		c += t.cols[i].wordCost(p)
	}
	return c
}

// wordRun sets in m the rows (of sel, when not nil) one of whose text-like
// values holds w.
func (t *table) wordRun(w string, m, sel []uint64, in int) {
	switch {
	case w == "":
		setAll(m, len(t.rows))
	case strings.IndexByte(w, 0) >= 0:
		t.joinedRows(w, sel, m)
	default:
		p := frame(w, false, false)
		for i := range t.cols {
			c := &t.cols[i]
			if probe(t.plan, sel, in, c.wordCost(p), c.probeCost()) {
				c.probeWord(p.b, sel, m)
			} else {
				c.wordRows(p, m)
			}
		}
	}
}

func count(b []uint64) int {
	n := 0
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return n
}

// ranked is a row as ranking sees it: its sort key's head, the key and
// its id (views of the arena) and its number.
type ranked struct {
	sortHead    uint64
	sortKey, id string
	i           int
}

// top ranks the rows in sel (every row when nil): the first limit in
// display order, and how many there are.
func (t *table) top(sel []uint64, limit int) ([]ranked, int) {
	heads := t.sortHeads
	top := make([]ranked, 0, limit)
	// worst is the sort head of top's last row once top is full: a row
	// whose head is above it cannot get in.
	worst := ^uint64(0)
	offer := func(i int) {
		if heads[i] > worst {
			return
		}
		b := t.rows[i].blob
		top = keepTop(top, ranked{sortHead: heads[i], sortKey: t.blobs.key(b), id: t.blobs.id(b), i: i}, limit)
		if len(top) == limit {
			worst = top[limit-1].sortHead
		}
	}
	if sel == nil {
		if limit > 0 {
			for i := range heads {
				offer(i)
			}
		}
		return top, len(heads)
	}
	total := 0
	for w, word := range sel {
		total += bits.OnesCount64(word)
		if limit == 0 {
			continue
		}
		for word != 0 {
			offer(w<<6 | bits.TrailingZeros64(word))
			word &= word - 1
		}
	}
	return top, total
}

// joinedRows sets in m the rows in sel (every row when nil) whose
// text-like values, lower-cased and joined with NUL in the order their
// schema lists them, hold w. Only a word holding NUL needs this: it may
// straddle two values. Such words are unheard of, so this is the plain
// way: one row at a time.
func (t *table) joinedRows(w string, sel, m []uint64) {
	var buf []byte
	for i := range t.rows {
		if sel != nil && sel[i>>6]>>(uint(i)&63)&1 == 0 {
			continue
		}
		buf = buf[:0]
		joined := false
		for _, slot := range t.layouts[t.rowLayout[i]] {
			n := len(buf)
			if joined {
				buf = append(buf, 0)
			}
			var ok bool
			if buf, ok = t.cols[slot].appendWords(buf, i); ok {
				joined = true
			} else {
				buf = buf[:n]
			}
		}
		if strings.Contains(string(buf), w) {
			set(m, i)
		}
	}
}

// zeroed returns a cleared bitset for n rows, reusing b when it can.
func zeroed(b []uint64, n int) []uint64 {
	if b == nil {
		return make([]uint64, (n+63)/64)
	}
	clear(b)
	return b
}

func setAll(b []uint64, n int) {
	for i := range n / 64 {
		b[i] = ^uint64(0)
	}
	if n%64 != 0 {
		b[n/64] = 1<<(n%64) - 1
	}
}

func and(dst, src []uint64) {
	for i := range dst {
		dst[i] &= src[i]
	}
}

func set(b []uint64, i int) { b[i>>6] |= 1 << (uint(i) & 63) }

// fieldScan is one field's OR'ed tests bound to its column.
type fieldScan struct {
	field *filter.Field
	slot  int // the column's
	col   *column
	tests []cellTest
}

// cellTest is a filter.Test made ready for a column: its value framed for
// a search of the dict (see pattern), as bytes for reading rows one at a
// time, and with its head, so "is" and "starts with" decide from a cell's
// head (a multi-select value's) when the value is at most 8 bytes. Every
// other case defers to filter's own matching.
type cellTest struct {
	filter.Test
	head, mask uint64
	short      bool
	needle     []byte // Text
	pat        pattern
	framed     bool // pat is set: the test is a search of the dict
}

func newFieldScan(f *filter.Field, slot int, col *column) fieldScan {
	fs := fieldScan{field: f, slot: slot, col: col, tests: make([]cellTest, len(f.Tests))}
	for i, t := range f.Tests {
		n := min(len(t.Text), 8)
		ct := cellTest{Test: t, head: head(t.Text), mask: ^uint64(0) << (8 * (8 - n)), short: len(t.Text) <= 8, needle: []byte(t.Text)}
		ct.pat, ct.framed = ct.pattern()
		fs.tests[i] = ct
	}
	return fs
}

// scanCost estimates a full pass over the column for n rows.
func (f *fieldScan) scanCost(n int) float64 {
	if f.field.Class != filter.TextLike {
		return float64(n) * float64(len(f.tests)) * costPerRowNumber
	}
	c := float64(n) * costPerRowMap
	for k := range f.tests {
		if f.tests[k].framed {
			c += f.col.texts.scanCost(f.tests[k].pat)
		}
	}
	return c
}

// probeCost estimates reading one row's value and testing it.
func (f *fieldScan) probeCost() float64 {
	if f.field.Class != filter.TextLike {
		return float64(len(f.tests)) * costPerRowNumber * 4
	}
	return costPerRowProbe + f.col.texts.meanLen()*costPerByte
}

// run sets in m the rows (of sel, when not nil) whose value passes one of
// the tests.
func (f *fieldScan) run(m, sel []uint64, in int, p plan) {
	n := len(f.col.text)
	if probe(p, sel, in, f.scanCost(n), f.probeCost()) {
		f.probe(m, sel)
	} else {
		f.scan(m, n)
	}
	// A multi-select list is matched value by value; such rows are few.
	if f.field.Class == filter.TextLike && f.field.Type == crmv1.FieldType_FIELD_TYPE_MULTI_PICKLIST {
		for i, vals := range f.col.multi {
			m[i>>6] &^= 1 << (uint(i) & 63)
			if f.matchAny(vals) {
				set(m, i)
			}
		}
	}
}

// pattern frames the test's value for a search of the column's dict; it
// reports false when the test needs none: an empty value, or a comparator
// filter matches no text with.
func (ct *cellTest) pattern() (pattern, bool) {
	if ct.Text == "" {
		return pattern{}, false
	}
	switch ct.Comparator {
	case slash.StartsWith:
		return frame(ct.Text, true, false), true
	case slash.EndsWith:
		return frame(ct.Text, false, true), true
	case slash.Is, slash.Equals:
		return frame(ct.Text, true, true), true
	case slash.Contains:
		return frame(ct.Text, false, false), true
	}
	return pattern{}, false
}

// scan sets in m the rows, of n, whose value passes one of the tests.
func (f *fieldScan) scan(m []uint64, n int) {
	if f.field.Class != filter.TextLike {
		if f.col.nums != nil { // else no row has a number: NaN passes nothing
			for k := range f.tests {
				matchNumbers(f.col.nums, rangeOf(&f.tests[k].Test), m)
			}
		}
		return
	}
	var hits []byte // nil: no hit
	for k := range f.tests {
		t := &f.tests[k]
		if t.framed {
			hits = f.col.texts.match(t.pat, hits)
			continue
		}
		if t.Text != "" {
			continue // a comparator filter matches no text with
		}
		switch t.Comparator {
		case slash.StartsWith, slash.EndsWith, slash.Contains: // every text starts with, ends with and holds ""
			setAll(m, n)
			return
		case slash.Is, slash.Equals: // is "": the rows without text
			if hits == nil {
				hits = f.col.texts.hits()
			}
			hits[0] = 1
		}
	}
	if hits != nil {
		rowsOf(f.col.text, hits, m)
	}
}

// probe sets in m the rows of sel whose value passes one of the tests,
// reading each row's value; where values repeat, each distinct one is
// tested once.
func (f *fieldScan) probe(m, sel []uint64) {
	if f.field.Class != filter.TextLike {
		if f.col.nums == nil {
			return
		}
		ranges := make([]keyRange, len(f.tests))
		for k := range f.tests {
			ranges[k] = rangeOf(&f.tests[k].Test)
		}
		for w, word := range sel {
			for ; word != 0; word &= word - 1 {
				i := w<<6 | bits.TrailingZeros64(word)
				for _, r := range ranges {
					if r.has(f.col.nums[i]) {
						set(m, i)
						break
					}
				}
			}
		}
		return
	}
	d := &f.col.texts
	if d.len()*4 > len(f.col.text) {
		// Mostly distinct values: test each row's as it comes.
		for w, word := range sel {
			var acc uint64
			for ; word != 0; word &= word - 1 {
				j := bits.TrailingZeros64(word)
				if f.matchValue(d.value(f.col.text[w<<6|j])) {
					acc |= 1 << uint(j)
				}
			}
			m[w] |= acc
		}
		return
	}
	const unseen, fails, passes = 0, 1, 2
	memo := d.hits()
	for w, word := range sel {
		var acc uint64
		for ; word != 0; word &= word - 1 {
			j := bits.TrailingZeros64(word)
			k := f.col.text[w<<6|j]
			if memo[k] == unseen {
				memo[k] = fails
				if f.matchValue(d.value(k)) {
					memo[k] = passes
				}
			}
			if memo[k] == passes {
				acc |= 1 << uint(j)
			}
		}
		m[w] |= acc
	}
}

// matchValue tests a folded value as filter's MatchText would.
func (f *fieldScan) matchValue(v []byte) bool {
	for k := range f.tests {
		t := &f.tests[k]
		needle := t.needle
		var ok bool
		switch t.Comparator {
		case slash.StartsWith:
			ok = bytes.HasPrefix(v, needle)
		case slash.EndsWith:
			ok = bytes.HasSuffix(v, needle)
		case slash.Contains:
			ok = bytes.Contains(v, needle)
		case slash.Is, slash.Equals:
			ok = bytes.Equal(v, needle)
		}
		if ok {
			return true
		}
	}
	return false
}

func (f *fieldScan) matchAny(vals []cell) bool {
	for k := range f.tests {
		for v := range vals {
			if f.tests[k].matchCell(&vals[v]) {
				return true
			}
		}
	}
	return false
}

// matchNumbers sets in m the rows whose number's key is in r: one
// subtraction and one unsigned comparison a row, no branch, each word of m
// built in a register 8 rows at a time with constant shifts.
func matchNumbers(nums []uint64, r keyRange, m []uint64) {
	if r.lo == 0 {
		return
	}
	lo, span := r.lo, r.span
	full := len(nums) / 64
	for w := range full {
		c := (*[64]uint64)(nums[w*64:])
		var acc uint64
		for j := 0; j < 64; j += 8 {
			b := b2u(c[j]-lo <= span) | b2u(c[j+1]-lo <= span)<<1 |
				b2u(c[j+2]-lo <= span)<<2 | b2u(c[j+3]-lo <= span)<<3 |
				b2u(c[j+4]-lo <= span)<<4 | b2u(c[j+5]-lo <= span)<<5 |
				b2u(c[j+6]-lo <= span)<<6 | b2u(c[j+7]-lo <= span)<<7
			acc |= b << uint(j)
		}
		m[w] |= acc
	}
	for i := full * 64; i < len(nums); i++ {
		m[i>>6] |= b2u(nums[i]-lo <= span) << (uint(i) & 63)
	}
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

func (ct *cellTest) matchCell(c *cell) bool {
	switch ct.Comparator {
	case slash.StartsWith:
		if len(c.text) < len(ct.Text) || c.head&ct.mask != ct.head {
			return false
		}
		return ct.short || strings.HasPrefix(c.text, ct.Text)
	case slash.Is, slash.Equals:
		if len(c.text) != len(ct.Text) || c.head != ct.head {
			return false
		}
		return ct.short || c.text == ct.Text
	}
	return ct.MatchText(c.text)
}

// keepTop inserts r into top, kept sorted and at most limit long.
func keepTop(top []ranked, r ranked, limit int) []ranked {
	n := len(top)
	if n == limit {
		if limit == 0 || !before(&r, &top[n-1]) {
			return top
		}
		n--
		top = top[:n]
	}
	i := n
	for i > 0 && before(&r, &top[i-1]) {
		i--
	}
	top = append(top, ranked{})
	copy(top[i+1:], top[i:n])
	top[i] = r
	return top
}

func before(a, b *ranked) bool {
	if a.sortHead != b.sortHead {
		return a.sortHead < b.sortHead
	}
	if a.sortKey != b.sortKey {
		return a.sortKey < b.sortKey
	}
	return a.id < b.id
}
