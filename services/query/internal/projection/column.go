package projection

import (
	"bytes"
	"math"
	"math/bits"

	"github.com/crmslack/crmslack/services/query/internal/filter"
	"github.com/crmslack/crmslack/services/query/internal/slash"
)

// sameAsText: a row whose text is also what it offers global search.
const sameAsText = -1

// column is one field's values, by row.
type column struct {
	// text[i] is row i's folded value in texts: a number as written, a
	// multi-select list's only value; 0 ("") when absent.
	texts dict
	text  []int32
	// nums[i] is row i's number (1 or 0 for a checkbox) as numKey has it,
	// 0 when absent; nil while no row of the column has had one.
	nums []uint64
	// multi holds the folded values of rows whose value is a multi-select
	// list (even an empty one), by row; nil for most columns.
	multi map[int][]cell
	// word[i] is what row i offers global search: sameAsText for most
	// rows, else its value in words, which is 0 ("") for nothing (the field
	// was not text-like when the row was written, or the value is absent)
	// or the lower-cased text when it differs from the folded one (a phone
	// number as typed, a multi-select list's values joined with NUL).
	words dict
	word  []int32
	same  int // rows whose word is sameAsText
}

// value is what build makes of one field of a record.
type value struct {
	text     string  // folded, "" when absent
	num      float64 // NaN when absent
	multi    []cell
	hasMulti bool
	// words is what the value offers global search, when not same: its
	// text-like parts lower-cased and joined with NUL, "" for nothing.
	words  string
	offers bool // the field is text-like and the value has text
	same   bool // what it offers is its folded text
}

var absent = value{num: math.NaN()}

// newColumn returns a column for a field first seen with rows rows
// already in the table, none of which has a value for it.
func newColumn(rows, capacity int) column {
	c := column{texts: newDict(), text: make([]int32, rows, capacity), words: newDict(), word: make([]int32, rows, capacity)}
	c.texts.refs[0] = int32(rows)
	c.words.refs[0] = int32(rows)
	return c
}

// grow adds a row without a value.
func (c *column) grow() {
	c.text = append(c.text, 0)
	c.texts.refs[0]++
	c.word = append(c.word, 0)
	c.words.refs[0]++
	if c.nums != nil {
		c.nums = append(c.nums, 0)
	}
}

// set gives row i the value v. Values are interned before the old ones
// are released, so an unchanged value stays as it is.
func (c *column) set(i int, v value, minDead int) {
	k := c.texts.intern(v.text)
	c.texts.release(c.text[i])
	c.text[i] = k

	w := int32(sameAsText)
	if !v.same {
		w = c.words.intern(v.words)
	}
	if old := c.word[i]; old == sameAsText {
		c.same--
	} else {
		c.words.release(old)
	}
	if w == sameAsText {
		c.same++
	}
	c.word[i] = w

	if key := numKey(v.num); c.nums != nil || key != 0 {
		if c.nums == nil {
			c.nums = make([]uint64, len(c.text), cap(c.text))
		}
		c.nums[i] = key
	}
	switch {
	case v.hasMulti:
		if c.multi == nil {
			c.multi = map[int][]cell{}
		}
		c.multi[i] = v.multi
	case c.multi != nil:
		delete(c.multi, i)
	}
	c.tidy(minDead)
}

// remove drops row i and moves the last row into its place.
func (c *column) remove(i int, minDead int) {
	last := len(c.text) - 1
	c.texts.release(c.text[i])
	if w := c.word[i]; w == sameAsText {
		c.same--
	} else {
		c.words.release(w)
	}
	c.text[i], c.word[i] = c.text[last], c.word[last]
	c.text, c.word = c.text[:last], c.word[:last]
	if c.nums != nil {
		c.nums[i] = c.nums[last]
		c.nums = c.nums[:last]
	}
	if c.multi != nil {
		delete(c.multi, i)
		if vals, ok := c.multi[last]; ok {
			c.multi[i] = vals
			delete(c.multi, last)
		}
	}
	c.tidy(minDead)
}

// tidy rebuilds a dict whose dead values outweigh its live ones, and
// renumbers the rows.
func (c *column) tidy(minDead int) {
	if c.texts.wasteful(minDead) {
		renum := c.texts.compact()
		for i, k := range c.text {
			c.text[i] = renum[k]
		}
	}
	if c.words.wasteful(minDead) {
		renum := c.words.compact()
		for i, k := range c.word {
			if k != sameAsText {
				c.word[i] = renum[k]
			}
		}
	}
}

// wordCost estimates wordRows.
func (c *column) wordCost(p pattern) float64 {
	cost := 0.0
	if c.same > 0 {
		cost += c.texts.scanCost(p)
	}
	if c.words.len() > 1 {
		cost += c.words.scanCost(p)
	}
	if cost > 0 {
		cost += float64(len(c.word)) * costPerRowMap
	}
	return cost
}

// probeCost estimates probeWord, per row.
func (c *column) probeCost() float64 {
	return costPerRowProbe + max(c.texts.meanLen(), c.words.meanLen())*costPerByte
}

// wordRows sets in m the rows whose offer to global search holds p, a
// word that is neither empty nor holds NUL, so it cannot straddle two
// values joined with NUL: each distinct value is searched once, and the
// hits are mapped to rows in one pass.
func (c *column) wordRows(p pattern, m []uint64) {
	var th, wh []byte // nil: no hit
	if c.same > 0 {
		th = c.texts.match(p, nil)
	}
	if c.words.len() > 1 {
		wh = c.words.match(p, nil)
	}
	switch {
	case th == nil && wh == nil:
	case c.same == len(c.word): // every row offers its text
		if th != nil {
			rowsOf(c.text, th, m)
		}
	case c.same == 0: // no row does (value 0, nothing, is never a hit)
		if wh != nil {
			rowsOf(c.word, wh, m)
		}
	default:
		for i, k := range c.word {
			if k == sameAsText {
				if th != nil && th[c.text[i]] != 0 {
					set(m, i)
				}
			} else if wh != nil && wh[k] != 0 {
				set(m, i)
			}
		}
	}
}

// probeWord sets in m the rows of sel, not in m yet, whose offer to global
// search holds w (as wordRows), reading each row's value.
func (c *column) probeWord(w []byte, sel, m []uint64) {
	for x, word := range sel {
		for word &^= m[x]; word != 0; word &= word - 1 {
			i := x<<6 | bits.TrailingZeros64(word)
			var v []byte
			switch k := c.word[i]; k {
			case sameAsText:
				v = c.texts.value(c.text[i])
			case 0:
				continue
			default:
				v = c.words.value(k)
			}
			if bytes.Contains(v, w) {
				set(m, i)
			}
		}
	}
}

// appendWords appends to buf what row i offers global search, and reports
// whether it offers anything (an empty text counts).
func (c *column) appendWords(buf []byte, i int) ([]byte, bool) {
	switch k := c.word[i]; k {
	case sameAsText:
		return append(buf, c.texts.value(c.text[i])...), true
	case 0:
		return buf, false
	default:
		return append(buf, c.words.value(k)...), true
	}
}

// numKey maps a number to a key whose unsigned order is the number's
// order, so comparing numbers is comparing integers: the sign bit flipped
// for positive numbers, every bit for negative ones. -0 gets 0's key (they
// are equal), and NaN, which is how an absent value reads and which equals
// nothing, gets 0, below every number's key (-Inf's is 1<<52 - 1).
func numKey(x float64) uint64 {
	switch {
	case x != x:
		return 0
	case x == 0:
		x = 0
	}
	b := math.Float64bits(x)
	if b>>63 != 0 {
		return ^b
	}
	return b | 1<<63
}

// keyRange is the closed range of keys [lo, lo+span] of the numbers that
// pass a test; empty when lo is 0 (the key no number has).
type keyRange struct{ lo, span uint64 }

// rangeOf returns the keys of the numbers t.MatchNumber lets through.
func rangeOf(t *filter.Test) keyRange {
	v := t.Number
	lo, hi := numKey(math.Inf(-1)), numKey(math.Inf(1))
	switch {
	case v != v:
		return keyRange{} // NaN: every comparison is false
	case t.Comparator == slash.Is || t.Comparator == slash.Equals:
		lo, hi = numKey(v), numKey(v)
	case t.Comparator == slash.Greater:
		if v == math.Inf(1) {
			return keyRange{}
		}
		lo = numKey(v) + 1
	case t.Comparator == slash.Less:
		if v == math.Inf(-1) {
			return keyRange{}
		}
		hi = numKey(v) - 1
	case t.Comparator == slash.GreaterOrEqual:
		lo = numKey(v)
	case t.Comparator == slash.LessOrEqual:
		hi = numKey(v)
	default:
		return keyRange{}
	}
	return keyRange{lo, hi - lo}
}

// has tells whether key is in r. Key 0 (absent) never is: 0-lo wraps past
// any span.
func (r keyRange) has(key uint64) bool { return r.lo != 0 && key-r.lo <= r.span }
