package projection

import (
	"hash/maphash"
	"math"
)

// A table's rows hold no pointer: each row's id, sort key and encoding lie
// back to back in an arena of large byte chunks (see blobs), and rows find
// each other by id through an open-addressing table of row numbers (see
// ids). A million rows are then a few dozen allocations the collector
// never scans, where strings, slices and a map keyed by id would be three
// million objects and as many pointers, marked on every cycle, and a
// hundred bytes more per row.

// chunkSize is the size of an arena chunk; a blob larger than a quarter of
// it gets a chunk of its own, so no more than a quarter is left unused.
const chunkSize = 1 << 20

// blob locates a row's bytes: id, then sort key, then encoding.
type blob struct {
	chunk, off           uint32
	idLen, keyLen, rawLn uint32
}

func (b blob) size() int { return int(b.idLen) + int(b.keyLen) + int(b.rawLn) }

// blobs is the arena. A chunk's bytes, once written, never change: a new
// version of a row goes to the end, and the old one is dead until the
// arena is compacted into new chunks. So a caller may keep a view of a
// row's encoding after the lock is released.
type blobs struct {
	chunks     [][]byte
	cur        int // the chunk being filled; -1 before the first
	live, dead int // bytes
}

func newBlobs() blobs { return blobs{cur: -1} }

// add stores a row's bytes and returns where.
func (a *blobs) add(id, key string, raw []byte) blob {
	n := len(id) + len(key) + len(raw)
	if n > math.MaxUint32 || len(a.chunks) >= math.MaxUint32 {
		panic("projection: a record passes 4 GiB")
	}
	c := a.cur
	switch {
	case n > chunkSize/4: // a chunk of its own; the current one stays current
		a.chunks = append(a.chunks, make([]byte, 0, n))
		c = len(a.chunks) - 1
	case c < 0 || cap(a.chunks[c])-len(a.chunks[c]) < n:
		a.chunks = append(a.chunks, make([]byte, 0, chunkSize))
		c = len(a.chunks) - 1
		a.cur = c
	}
	buf := a.chunks[c]
	b := blob{chunk: uint32(c), off: uint32(len(buf)), idLen: uint32(len(id)), keyLen: uint32(len(key)), rawLn: uint32(len(raw))}
	buf = append(buf, id...)
	buf = append(buf, key...)
	a.chunks[c] = append(buf, raw...)
	a.live += n
	return b
}

// drop counts a row's bytes dead.
func (a *blobs) drop(b blob) {
	a.live -= b.size()
	a.dead += b.size()
}

func (a *blobs) bytes(b blob) []byte {
	return a.chunks[b.chunk][b.off : int(b.off)+b.size() : int(b.off)+b.size()]
}

func (a *blobs) id(b blob) string { return unsafeString(a.bytes(b)[:b.idLen]) }

func (a *blobs) key(b blob) string { return unsafeString(a.bytes(b)[b.idLen : b.idLen+b.keyLen]) }

func (a *blobs) raw(b blob) []byte { return a.bytes(b)[b.idLen+b.keyLen:] }

// wasteful: dead bytes pass both minDead and the live ones, the point at
// which a compaction's copy is paid for by as many bytes of churn.
func (a *blobs) wasteful(minDead int) bool { return a.dead > minDead && a.dead > a.live }

// compact copies the rows' bytes into new chunks, leaving the old ones to
// whoever still views them, and updates rows.
func (a *blobs) compact(rows []row) {
	fresh := newBlobs()
	for i := range rows {
		b := rows[i].blob
		rows[i].blob = fresh.add(a.id(b), a.key(b), a.raw(b))
	}
	*a = fresh
}

// ids finds a row by its id: an open-addressing table, linear probing, at
// most half full, of row numbers plus one (0 is a free slot) with 32 bits
// of each id's hash, which place the entry and spare most comparisons, so
// growing and deleting move entries without reading an id.
type ids struct {
	slots []idSlot
	n     int
}

type idSlot struct {
	row  int32 // row number + 1; 0: free
	hash uint32
}

func hashID(id string) uint32 { return uint32(maphash.String(seed, id)) }

// find returns the slot of id and its row, or the free slot where it
// would go and -1.
func (x *ids) find(id string, t *table) (int, int32) {
	if len(x.slots) == 0 {
		x.slots = make([]idSlot, 8)
	}
	mask := len(x.slots) - 1
	h := hashID(id)
	for i := int(h) & mask; ; i = (i + 1) & mask {
		s := x.slots[i]
		if s.row == 0 {
			return i, -1
		}
		if s.hash == h && t.id(s.row-1) == id {
			return i, s.row - 1
		}
	}
}

// insert puts row at slot (a free one find returned for id).
func (x *ids) insert(slot int, id string, row int32) {
	x.slots[slot] = idSlot{row: row + 1, hash: hashID(id)}
	if x.n++; 2*x.n > len(x.slots) {
		x.grow()
	}
}

// set points the slot of a row's id at another row number (the row moved).
func (x *ids) set(slot int, row int32) { x.slots[slot].row = row + 1 }

func (x *ids) grow() {
	old := x.slots
	x.slots = make([]idSlot, 2*len(old))
	mask := len(x.slots) - 1
	for _, s := range old {
		if s.row == 0 {
			continue
		}
		i := int(s.hash) & mask
		for x.slots[i].row != 0 {
			i = (i + 1) & mask
		}
		x.slots[i] = s
	}
}

// remove frees a slot, moving back the entries after it that would no
// longer be found (backward-shift deletion, so no tombstone is needed).
func (x *ids) remove(slot int) {
	mask := len(x.slots) - 1
	i := slot
	for j := (i + 1) & mask; x.slots[j].row != 0; j = (j + 1) & mask {
		k := int(x.slots[j].hash) & mask // where j's entry wants to be
		// It may fill the hole at i unless its home lies cyclically in (i, j].
		if (j > i && (k <= i || k > j)) || (j < i && k <= i && k > j) {
			x.slots[i] = x.slots[j]
			i = j
		}
	}
	x.slots[i] = idSlot{}
	x.n--
}
