package projection

import (
	"slices"
	"strings"

	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	"github.com/crmslack/crmslack/services/query/internal/filter"
	"github.com/crmslack/crmslack/services/query/internal/slash"
)

// scan returns the first limit matching rows in display order and the
// number of matches. The caller holds the read lock.
func (t *table) scan(q *filter.Query, limit int) ([]*row, int) {
	words := q.Words
	fields := make([]fieldScan, len(q.Fields))
	for i := range q.Fields {
		slot, ok := t.slots[q.Fields[i].APIName]
		if !ok {
			return nil, 0 // a field no record of this table has: nothing matches
		}
		fields[i] = newFieldScan(&q.Fields[i], slot, t.cols[slot])
	}
	// Fields are AND'ed, so the cheap ones go first and spare the costly
	// ones (contains, ends with: a read of the string) most rows.
	slices.SortStableFunc(fields, func(a, b fieldScan) int { return a.cost() - b.cost() })
	top := make([]*row, 0, limit)
	total := 0
rows:
	for i := range t.rows {
		for _, f := range fields {
			if !f.match(t, i) {
				continue rows
			}
		}
		r := &t.rows[i]
		for _, w := range words {
			if !strings.Contains(r.haystack, w) {
				continue rows
			}
		}
		total++
		top = keepTop(top, r, limit)
	}
	return top, total
}

// fieldScan is one field's OR'ed tests bound to its column.
type fieldScan struct {
	field *filter.Field
	slot  int
	col   []cell
	tests []cellTest
}

// cellTest is a filter.Test with the value's head precomputed, so "is" and
// "starts with" decide from the cell's inline head when the value is at
// most 8 bytes. Every other case defers to filter's own matching.
type cellTest struct {
	filter.Test
	head, mask uint64
	short      bool
}

func newFieldScan(f *filter.Field, slot int, col []cell) fieldScan {
	fs := fieldScan{field: f, slot: slot, col: col, tests: make([]cellTest, len(f.Tests))}
	for i, t := range f.Tests {
		n := min(len(t.Text), 8)
		fs.tests[i] = cellTest{Test: t, head: head(t.Text), mask: ^uint64(0) << (8 * (8 - n)), short: len(t.Text) <= 8}
	}
	return fs
}

// cost ranks a field's tests: numbers, then what the inline head decides,
// then what must read the string.
func (f *fieldScan) cost() int {
	if f.field.Class != filter.TextLike {
		return 0
	}
	c := 1
	for _, t := range f.tests {
		if !t.short || (t.Comparator != slash.StartsWith && t.Comparator != slash.Is && t.Comparator != slash.Equals) {
			c = 2
		}
	}
	return c
}

func (f *fieldScan) match(t *table, i int) bool {
	c := &f.col[i]
	if f.field.Class != filter.TextLike {
		for k := range f.tests {
			if f.tests[k].MatchNumber(c.num) {
				return true
			}
		}
		return false
	}
	// Only multi-select fields look at the row: the other scans stay in the column.
	if f.field.Type == crmv1.FieldType_FIELD_TYPE_MULTI_PICKLIST {
		if vals, ok := t.rows[i].multi[f.slot]; ok {
			for k := range f.tests {
				for _, v := range vals {
					if f.tests[k].MatchText(v) {
						return true
					}
				}
			}
			return false
		}
	}
	for k := range f.tests {
		if f.tests[k].matchCell(c) {
			return true
		}
	}
	return false
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
func keepTop(top []*row, r *row, limit int) []*row {
	n := len(top)
	if n == limit {
		if limit == 0 || !before(r, top[n-1]) {
			return top
		}
		n--
		top = top[:n]
	}
	i := n
	for i > 0 && before(r, top[i-1]) {
		i--
	}
	top = append(top, nil)
	copy(top[i+1:], top[i:n])
	top[i] = r
	return top
}

func before(a, b *row) bool {
	if a.sortHead != b.sortHead {
		return a.sortHead < b.sortHead
	}
	if a.sortKey != b.sortKey {
		return a.sortKey < b.sortKey
	}
	return a.id < b.id
}
