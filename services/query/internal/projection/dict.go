package projection

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"math"
	"math/bits"
	"strings"
)

// sep closes every value in a dict's arena, and opens the first. Stored
// text is folded (filter.Fold, strings.ToLower) from proto3 strings, which
// are valid UTF-8, and folding keeps it so (strings.ToLower even turns a
// stray byte into U+FFFD); phone values are digits. 0xFF is never part of
// valid UTF-8, so no value holds sep, and a needle without sep cannot
// match across two values. A needle with sep matches no value at all.
const sep = 0xFF

// defaultMinDead: a dict is rebuilt once what its dead values hold passes
// both this many bytes and what its live values hold, which keeps it under
// twice its live size while a rebuild's cost is paid for by as much churn.
const defaultMinDead = 64 << 10

var seed = maphash.MakeSeed()

// dict is one column's distinct values, each stored once however many
// rows hold it, and numbered; rows refer to values by number. The values
// lie back to back in one byte slice, the arena, each followed by sep, so
// a search is a scan of contiguous memory (a few dozen bytes for a
// picklist, every address for an e-mail field) rather than a walk over
// 100,000 scattered strings, and each distinct value is searched once.
//
// Every text comparator is a substring search over the arena: contains
// looks for the needle, "starts with" for sep+needle, "ends with" for
// needle+sep, "is" for sep+needle+sep. Value 0 is "", which absent values
// share too; empty needles are answered without the arena.
//
// A value no row holds any more is dead: it stays in the arena, and in the
// index (the same value coming back revives it), until dead values outweigh
// live ones and the dict is rebuilt.
type dict struct {
	data []byte // sep, then every value followed by sep
	// starts[k] is where value k begins in data; there is one more entry
	// than there are values, where the next value would begin.
	starts []uint32
	refs   []int32  // refs[k]: how many rows hold value k
	index  []uint32 // open-addressing hash table of value numbers, 0 for a free slot
	// dead and deadValues: the bytes of dead values, separators included,
	// and how many they are.
	dead, deadValues int
	// freq counts each byte of the live values and their separators, so a
	// search can look for the needle's rarest bytes first.
	freq [256]int
}

func newDict() dict {
	d := dict{data: []byte{sep, sep}, starts: []uint32{1, 2}, refs: []int32{0}, index: make([]uint32, 8)}
	d.freq[sep] = 2
	return d
}

func (d *dict) len() int { return len(d.refs) }

func (d *dict) value(k int32) []byte { return d.data[d.starts[k] : d.starts[k+1]-1] }

// intern returns the number of v, adding it if it is new, and counts one
// more row holding it.
func (d *dict) intern(v string) int32 {
	if v == "" {
		d.refs[0]++
		return 0
	}
	if strings.IndexByte(v, sep) >= 0 {
		// Cannot happen (see sep); keep the arena's framing intact anyway.
		// 0xFE is no more UTF-8 than 0xFF, so no folded needle tells them apart.
		v = strings.ReplaceAll(v, "\xff", "\xfe")
	}
	mask := uint64(len(d.index) - 1)
	i := maphash.String(seed, v) & mask
	for ; d.index[i] != 0; i = (i + 1) & mask {
		if k := int32(d.index[i]); string(d.value(k)) == v {
			if d.refs[k] == 0 { // dead: bring it back
				d.dead -= len(v) + 1
				d.deadValues--
				d.count(v, 1)
			}
			d.refs[k]++
			return k
		}
	}
	if len(d.data)+len(v)+1 > math.MaxUint32 {
		panic("projection: the values of one field of one module pass 4 GiB")
	}
	k := int32(len(d.refs))
	d.data = append(d.data, v...)
	d.data = append(d.data, sep)
	d.starts = append(d.starts, uint32(len(d.data)))
	d.refs = append(d.refs, 1)
	d.count(v, 1)
	d.index[i] = uint32(k)
	if 2*len(d.refs) > len(d.index) {
		d.reindex()
	}
	return k
}

// release counts one row fewer holding value k.
func (d *dict) release(k int32) {
	if d.refs[k]--; d.refs[k] == 0 && k != 0 {
		v := d.value(k)
		d.dead += len(v) + 1
		d.deadValues++
		for _, b := range v {
			d.freq[b]--
		}
		d.freq[sep]--
	}
}

func (d *dict) count(v string, n int) {
	for i := range len(v) {
		d.freq[v[i]] += n
	}
	d.freq[sep] += n
}

// reindex builds the hash table afresh, at most half full.
func (d *dict) reindex() {
	size := 8
	for size < 2*len(d.refs) {
		size <<= 1
	}
	d.index = make([]uint32, size)
	mask := uint64(size - 1)
	for k := 1; k < len(d.refs); k++ {
		i := maphash.Bytes(seed, d.value(int32(k))) & mask
		for d.index[i] != 0 {
			i = (i + 1) & mask
		}
		d.index[i] = uint32(k)
	}
}

// perValue is what a value costs besides its bytes: its start, its count
// of rows and its slots in the index.
const perValue = 4 + 4 + 2*4

// wasteful tells whether the dict is due for a rebuild: what its dead
// values hold, bookkeeping included, passes minDead and what the live
// ones hold.
func (d *dict) wasteful(minDead int) bool {
	waste := d.dead + d.deadValues*perValue
	return waste > minDead && 2*waste > len(d.data)+len(d.refs)*perValue
}

// compact rebuilds the arena with the live values only and returns the new
// number of each old one (dead ones get 0); the caller renumbers its rows.
func (d *dict) compact() []int32 {
	renum := make([]int32, len(d.refs))
	live := len(d.refs) - d.deadValues // value 0 included
	nd := dict{
		data:   make([]byte, 2, len(d.data)-d.dead),
		starts: make([]uint32, 2, live+1),
		refs:   make([]int32, 1, live),
	}
	nd.data[0], nd.data[1] = sep, sep
	nd.starts[0], nd.starts[1] = 1, 2
	nd.refs[0] = d.refs[0]
	nd.freq[sep] = 2
	for k := 1; k < len(d.refs); k++ {
		if d.refs[k] == 0 {
			continue
		}
		v := d.value(int32(k))
		renum[k] = int32(len(nd.refs))
		nd.data = append(nd.data, v...)
		nd.data = append(nd.data, sep)
		nd.starts = append(nd.starts, uint32(len(nd.data)))
		nd.refs = append(nd.refs, d.refs[k])
	}
	nd.freq = d.freq
	*d = nd
	d.reindex()
	return renum
}

// hits returns an empty set of values: hits[k] is 1 once value k is in.
// (A byte a value, not a bit, so mapping hits to rows needs no shift by a
// variable amount.)
func (d *dict) hits() []byte { return make([]byte, len(d.refs)) }

// pattern is a needle framed for a search of an arena: contains looks for
// the needle, "starts with" for sep+needle, "ends with" for needle+sep,
// "is" for sep+needle+sep. The needle is not empty.
type pattern struct {
	b     []byte
	shift int  // from a match's start to its value's: 1 when b opens with sep
	none  bool // the needle holds sep, so no value holds it
	// lead and trail: the needle is tied to a value's start or end, or
	// both ("is").
	lead, trail bool
}

// needle is the pattern without its framing.
func (p pattern) needle() []byte {
	n := p.b[p.shift:]
	if p.trail {
		n = n[:len(n)-1]
	}
	return n
}

func frame(needle string, lead, trail bool) pattern {
	p := pattern{b: make([]byte, 0, len(needle)+2), none: strings.IndexByte(needle, sep) >= 0, lead: lead, trail: trail}
	if lead {
		p.b = append(p.b, sep)
		p.shift = 1
	}
	p.b = append(p.b, needle...)
	if trail {
		p.b = append(p.b, sep)
	}
	return p
}

// Costs, in nanoseconds, measured on the machine this was tuned on (an
// AMD EPYC, GOAMD64=v1); they only choose between ways that give the same
// answer.
const (
	costPerLeap      = 18       // IndexByte from one occurrence of a byte to the next, and the check there
	costPerVecByte   = 1.0 / 64 // IndexByte, per byte it passes over
	costPerByte      = 0.31     // the word-wide scan (dense), per byte; also reading a value
	costPerRowMap    = 0.35     // mapping hits to rows (rowsOf), per row
	costPerRowNumber = 0.55     // comparing a number (matchNumbers), per row
	costPerRowProbe  = 10       // reading one row's value, before its bytes
	costPerValue     = 2        // comparing one value at its start or end (anchored)
	costPerLookup    = 50       // finding one value in the index
)

// rare returns where pat's two rarest bytes are (j2 < 0 when pat has one
// byte), and false when no live value holds the rarest.
func (d *dict) rare(pat []byte) (j1, j2 int, ok bool) {
	j1, j2 = 0, -1
	for j := range pat {
		if d.freq[pat[j]] < d.freq[pat[j1]] {
			j1 = j
		}
	}
	for j := range pat {
		if j != j1 && (j2 < 0 || d.freq[pat[j]] < d.freq[pat[j2]]) {
			j2 = j
		}
	}
	return j1, j2, d.freq[pat[j1]] > 0
}

// sparse tells whether pat's rarest byte is rare enough to leap to.
func (d *dict) sparse(pat []byte, j1, j2 int) bool {
	return j2 < 0 || float64(d.freq[pat[j1]])*costPerLeap < float64(len(d.data))*costPerByte
}

// scanCost estimates a match of p over the whole arena: the cheaper of
// the search of its bytes and, for a needle tied to a value's start or end,
// a comparison there in each value (or, for "is", a look-up).
func (d *dict) scanCost(p pattern) float64 {
	j1, j2, ok := d.rare(p.b)
	if p.none || !ok {
		return 0
	}
	return min(d.searchCost(p, j1, j2), d.anchoredCost(p))
}

// searchCost estimates the search of p's bytes over the arena.
func (d *dict) searchCost(p pattern, j1, j2 int) float64 {
	if d.sparse(p.b, j1, j2) {
		return float64(len(d.data))*costPerVecByte + float64(d.freq[p.b[j1]])*costPerLeap
	}
	return float64(len(d.data)) * costPerByte
}

// anchoredCost estimates anchored; +Inf for a needle tied to neither end.
func (d *dict) anchoredCost(p pattern) float64 {
	switch {
	case p.lead && p.trail:
		return costPerLookup
	case p.lead || p.trail:
		return float64(len(d.refs)) * costPerValue
	}
	return math.Inf(1)
}

// anchored adds to hits (made when nil) the values p is found in by
// comparing its needle where it must be: one look-up for "is", and for
// "starts with" or "ends with" one comparison a value, at its start or end,
// which for a column of long distinct values (e-mail addresses) reads a
// few bytes of each instead of every byte of the arena.
func (d *dict) anchored(p pattern, hits []byte) []byte {
	needle := p.needle()
	mark := func(k int) {
		if hits == nil {
			hits = d.hits()
		}
		hits[k] = 1
	}
	if p.lead && p.trail {
		mask := uint64(len(d.index) - 1)
		for i := maphash.Bytes(seed, needle) & mask; d.index[i] != 0; i = (i + 1) & mask {
			if k := int32(d.index[i]); bytes.Equal(d.value(k), needle) {
				mark(int(k))
				break
			}
		}
		return hits
	}
	n := uint32(len(needle))
	first, last := needle[0], needle[n-1]
	for k := 1; k < len(d.refs); k++ {
		from, to := d.starts[k], d.starts[k+1]-1 // the value is data[from:to]
		if to-from < n {
			continue
		}
		if p.lead {
			if d.data[from] == first && bytes.Equal(d.data[from:from+n], needle) {
				mark(k)
			}
		} else if d.data[to-1] == last && bytes.Equal(d.data[to-n:to], needle) {
			mark(k)
		}
	}
	return hits
}

// meanLen is the mean length of the live values.
func (d *dict) meanLen() float64 {
	return float64(len(d.data)-d.dead) / float64(len(d.refs)-d.deadValues)
}

// match adds to hits (made on the first one, when nil) every value p is
// found in, and returns it. Dead values may be among them; no row holds
// those.
func (d *dict) match(p pattern, hits []byte) []byte {
	j1, j2, ok := d.rare(p.b)
	if p.none || !ok {
		return hits // no live value holds that byte
	}
	if d.anchoredCost(p) < d.searchCost(p, j1, j2) {
		return d.anchored(p, hits)
	}
	// Where the pattern is found, its two rarest bytes are: look for
	// those first, and compare the whole pattern only there.
	f := finder{d: d, pat: p.b, shift: p.shift, hits: hits}
	if d.sparse(p.b, j1, j2) {
		f.sparse(j1, j2)
	} else {
		f.dense(j1, j2)
	}
	return f.hits
}

// finder runs one pattern over a dict's arena.
type finder struct {
	d     *dict
	pat   []byte
	shift int    // from a match's start to its value's: 1 when pat opens with sep
	hits  []byte // values found, nil until one is
	k     int    // the value of the last match; matches come in order
}

// hit records a match at p and returns where the next one may start: one
// match per value is enough.
func (f *finder) hit(p int) int {
	f.k = seek(f.d.starts, f.k, uint32(p+f.shift))
	if f.hits == nil {
		f.hits = f.d.hits()
	}
	f.hits[f.k] = 1
	return int(f.d.starts[f.k+1]) - f.shift
}

// sparse is for a rare byte at j1: IndexByte (vector code) leaps from one
// of its occurrences to the next.
func (f *finder) sparse(j1, j2 int) {
	data, pat, n := f.d.data, f.pat, len(f.pat)
	b1 := pat[j1]
	for from := 0; from+n <= len(data); {
		o := bytes.IndexByte(data[from+j1:len(data)-n+j1+1], b1)
		if o < 0 {
			return
		}
		p := from + o
		if (j2 >= 0 && data[p+j2] != pat[j2]) || !bytes.Equal(data[p:p+n], pat) {
			from = p + 1
			continue
		}
		from = f.hit(p)
	}
}

// dense is for patterns whose every byte is common, where IndexByte would
// stop every few bytes: it tests 8 positions at a time for both rare
// bytes at once, with word-wide arithmetic, and compares the pattern only
// where both are in place.
func (f *finder) dense(j1, j2 int) {
	data, pat, n := f.d.data, f.pat, len(f.pat)
	b1, b2 := pat[j1], pat[j2]
	w1, w2 := uint64(b1)*lanes, uint64(b2)*lanes
	last := len(data) - n               // the last position a match can start at
	wide := len(data) - max(j1, j2) - 8 // the last position both words can be read at
	next := 0                           // positions before it are in a value already found
	p := 0
	for ; p <= min(last, wide); p += 8 {
		m := zeroLanes(binary.LittleEndian.Uint64(data[p+j1:])^w1) & zeroLanes(binary.LittleEndian.Uint64(data[p+j2:])^w2)
		for ; m != 0; m &= m - 1 {
			q := p + bits.TrailingZeros64(m)>>3
			if q >= next && q <= last && bytes.Equal(data[q:q+n], pat) {
				next = f.hit(q)
			}
		}
		if next > p+8 {
			p = next - 8
		}
	}
	for p = max(p, next); p <= last; p++ {
		if data[p+j1] == b1 && data[p+j2] == b2 && bytes.Equal(data[p:p+n], pat) {
			p = f.hit(p) - 1
		}
	}
}

const (
	lanes = 0x0101010101010101
	low7  = 0x7f7f7f7f7f7f7f7f
)

// zeroLanes returns x with the top bit set in each byte that is zero and
// clear elsewhere. (No carry crosses a byte: (x&0x7f)+0x7f is at most 0xfe.)
func zeroLanes(x uint64) uint64 { return ^((x&low7 + low7) | x | low7) }

// seek returns the value holding position q of data, searching forward
// from value k, which begins at or before q: galloping, then bisecting, so
// nearby values are found in a step or two and far ones in a logarithm.
func seek(starts []uint32, k int, q uint32) int {
	lo, step := k, 1
	hi := lo + step
	for hi < len(starts) && starts[hi] <= q {
		lo = hi
		step <<= 1
		hi = lo + step
	}
	hi = min(hi, len(starts))
	for hi-lo > 1 {
		m := int(uint(lo+hi) >> 1)
		if starts[m] <= q {
			lo = m
		} else {
			hi = m
		}
	}
	return lo
}

// rowsOf sets in m each row i whose value, of[i], is in hits. It is the
// one pass over every row a text criterion makes, so it is kept tight: 64
// rows to a word of m, 8 at a time with constant shifts.
func rowsOf(of []int32, hits []byte, m []uint64) {
	full := len(of) / 64
	for w := range full {
		c := (*[64]int32)(of[w*64:])
		var acc uint64
		for j := 0; j < 64; j += 8 {
			b := uint64(hits[uint32(c[j])]) | uint64(hits[uint32(c[j+1])])<<1 |
				uint64(hits[uint32(c[j+2])])<<2 | uint64(hits[uint32(c[j+3])])<<3 |
				uint64(hits[uint32(c[j+4])])<<4 | uint64(hits[uint32(c[j+5])])<<5 |
				uint64(hits[uint32(c[j+6])])<<6 | uint64(hits[uint32(c[j+7])])<<7
			acc |= b << uint(j)
		}
		m[w] |= acc
	}
	for i := full * 64; i < len(of); i++ {
		if hits[of[i]] != 0 {
			set(m, i)
		}
	}
}
