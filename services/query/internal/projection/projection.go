// Package projection is the in-memory read model slash commands search: the
// records of every org and module, kept current from RecordUpserted and
// RecordDeleted events and laid out so one search over 100,000 records is a
// few tight scans.
//
// Versions: a record keeps the highest version it has seen. An upsert or a
// delete whose version is not above the current one is stale (a duplicate
// or an out-of-order delivery) and changes nothing. A delete leaves a
// tombstone holding its version, so an older upsert arriving after it
// cannot bring the record back; an upsert with a higher version than the
// delete does bring it back, because the CRM bumps the version on every
// change and a later change means the record exists again (an undelete or a
// restore from the recycle bin). Tombstones are a few dozen bytes each and
// are kept until [Store.CompactTombstones] drops those older than a
// horizon; the durable rebuild (package feed) replays them too, from the
// deletes kept in the snapshot stream for the same horizon.
//
// Layout: each (org, module) is a table with its own lock, so one org's
// writes never wait on another's searches. Searchable values are folded
// once at apply time (lower case, phone digits) and stored column by
// column, one column per field. A column's text is a dict (see dict): each
// distinct folded value stored once, back to back with the others in one
// byte slice, and each row holding a value's number. "contains", "starts
// with", "ends with" and "is" are then one byte search over contiguous
// memory that reads each distinct value once, and one pass over the rows'
// numbers maps the values found to rows. Numbers and checkboxes are a
// column of integer keys in the numbers' order. Global search reads the
// same dicts, field by field, with a second dict per column for what a
// value offers global search when that differs from its folded text (a
// phone number as typed, a multi-select list's values). Each criterion and
// each word yields a bitset of rows; they are AND'ed, cheapest first, and a
// costly one that comes after others have left few rows reads just those
// rows' values. The survivors are ranked by a column of sort-key heads.
// Rows stay dense: a delete moves the last row into the hole. A value no
// row holds any more stays, dead, in its dict until dead bytes outweigh
// live ones; then the dict is rebuilt under the write lock, a copy of the
// live values paid for by as many bytes of churn. Records are kept
// marshalled and only the ten shown are decoded, which keeps memory near
// the wire size and hands callers records they own; their encodings, ids
// and sort keys lie in an arena of large chunks and rows find each other
// through an open-addressing table (rows.go), so a table's million rows
// hold no pointer for the collector to mark.
package projection

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	"github.com/crmslack/crmslack/services/query/internal/filter"
)

// ErrInvalidEvent: the event lacks what the projection needs (org, module,
// id, schema). Retrying cannot help; the consumer should terminate it.
var ErrInvalidEvent = errors.New("invalid record event")

// Store holds every org's tables. The zero value is not usable; call New.
type Store struct {
	mu     sync.RWMutex
	tables map[tableKey]*table
	// minDead is the dead space a dict may hold before a rebuild; plan
	// says how searches choose between scanning and probing (tests force
	// one or the other).
	minDead int
	plan    plan
	now     func() time.Time // stamps tombstones
}

type tableKey struct{ org, module string }

// New returns an empty store.
func New() *Store { return newStore(defaultMinDead, planCheaper) }

func newStore(minDead int, p plan) *Store {
	return &Store{tables: map[tableKey]*table{}, minDead: minDead, plan: p, now: time.Now}
}

type table struct {
	mu sync.RWMutex
	// schema is the one carried by the last upsert applied.
	schema *crmv1.ModuleSchema
	// slots numbers the searchable fields by API name; a slot, once given,
	// keeps its number, so rows written under an older schema stay valid.
	slots      map[string]int
	rows       []row
	blobs      blobs                // the rows' ids, sort keys and encodings
	index      ids                  // record id → position in rows
	tombstones map[string]tombstone // deleted record id → the delete
	// sortHeads[i] is rows[i].sortHead, packed for the ranking scan.
	sortHeads []uint64
	// cols[slot] holds that field's value of every row.
	cols []column
	// layouts are the orders in which schemas list their text-like
	// fields, as slots; rowLayout[i] is the one row i was written under,
	// which says how its values join into one text (global search with a
	// word holding NUL, whose match may straddle two values).
	layouts   [][]int
	rowLayout []int32
	minDead   int // see Store
	plan      plan
	// build's scratch, kept between calls (under the write lock)
	valsBuf   []value
	layoutBuf []int
}

// tombstone is a delete's version and when it was applied (Unix seconds).
type tombstone struct{ version, at int64 }

// row is a record's version, the head of its sort key (the folded display
// name, compared first; ties go by the whole key, then id) and where its
// id, sort key and encoding lie (see rows.go).
type row struct {
	version  int64
	sortHead uint64
	blob
}

// cell is one folded value of a multi-select list, with its head, which
// answers "is" and "starts with" for values of at most 8 bytes without
// reading the string.
type cell struct {
	head uint64
	text string
}

// head packs the first 8 bytes of s big-endian, zero-padded, so comparing
// heads orders and prefixes strings like comparing their first 8 bytes.
func head(s string) uint64 {
	var h uint64
	for i := range 8 {
		h <<= 8
		if i < len(s) {
			h |= uint64(s[i])
		}
	}
	return h
}

func (s *Store) table(org, module string, create bool) *table {
	k := tableKey{org, module}
	s.mu.RLock()
	t := s.tables[k]
	s.mu.RUnlock()
	if t != nil || !create {
		return t
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t = s.tables[k]; t == nil {
		t = &table{slots: map[string]int{}, blobs: newBlobs(), tombstones: map[string]tombstone{}, minDead: s.minDead, plan: s.plan}
		s.tables[k] = t
	}
	return t
}

// ApplyUpserted stores the record unless the projection already holds this
// version or a newer one (or a newer delete). It reports whether anything
// changed. The record is copied; the schema is kept as given, so the caller
// must not modify the event afterwards.
func (s *Store) ApplyUpserted(ev *crmv1.RecordUpserted) (bool, error) {
	org, rec, schema := ev.GetEnvelope().GetOrgId(), ev.GetRecord(), ev.GetSchema()
	if err := checkUpserted(org, rec, schema); err != nil {
		return false, err
	}
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(rec)
	if err != nil {
		return false, fmt.Errorf("record %s/%s: %w: %w", rec.GetModule(), rec.GetId(), ErrInvalidEvent, err)
	}
	v := views.Get().(*recView)
	defer putView(v)
	viewOf(rec, v)
	return s.apply(org, v, schema, raw), nil
}

// ApplyEncoded is ApplyUpserted for a record of org given as its encoding,
// raw, with its module's schema: the store reads the fields it needs
// straight from raw and keeps a copy of raw, so a rebuild's million records
// are neither decoded into messages nor encoded again.
func (s *Store) ApplyEncoded(org string, schema *crmv1.ModuleSchema, raw []byte) (bool, error) {
	p, err := ParseEncoded(raw)
	if err != nil {
		return false, fmt.Errorf("record of %s: %w", schema.GetModule(), err)
	}
	return s.ApplyParsed(org, schema, p)
}

// Parsed is a record's encoding read by [ParseEncoded], for
// [Store.ApplyParsed]. Parsing reads no state of a store, so a rebuild
// parses on several goroutines and applies on one.
type Parsed struct {
	v   *recView
	raw []byte
}

// Module is the parsed record's module.
func (p *Parsed) Module() string { return p.v.module }

// ParseEncoded reads the fields of a record's encoding, raw, that a store
// keeps; the result views raw, which must not change until it is applied.
func ParseEncoded(raw []byte) (*Parsed, error) {
	v := views.Get().(*recView)
	if parseRecord(raw, v) != nil {
		// Not as parseRecord expects: decode it as anything else.
		rec := &crmv1.Record{}
		if err := proto.Unmarshal(raw, rec); err != nil {
			putView(v)
			return nil, fmt.Errorf("%w: %w", ErrInvalidEvent, err)
		}
		viewOf(rec, v)
	}
	return &Parsed{v: v, raw: raw}, nil
}

// ApplyParsed is [Store.ApplyEncoded] for a record parsed already, of org
// with its module's schema. p is spent: apply it once.
func (s *Store) ApplyParsed(org string, schema *crmv1.ModuleSchema, p *Parsed) (bool, error) {
	defer putView(p.v)
	if err := checkView(org, p.v, schema); err != nil {
		return false, err
	}
	return s.apply(org, p.v, schema, p.raw), nil
}

// views are build's input, reused.
var views = sync.Pool{New: func() any { return &recView{} }}

// putView returns v to views viewing nothing: a view waiting in the pool
// must not keep the message it viewed (an imported batch's is hundreds of
// records) from the collector.
func putView(v *recView) {
	v.reset()
	views.Put(v)
}

func checkView(org string, v *recView, schema *crmv1.ModuleSchema) error {
	switch {
	case org == "" || v.id == "" || v.module == "":
		return fmt.Errorf("record upserted without org, module or id: %w", ErrInvalidEvent)
	case schema.GetModule() != v.module:
		return fmt.Errorf("record %s/%s upserted with the schema of %q: %w", v.module, v.id, schema.GetModule(), ErrInvalidEvent)
	}
	return nil
}

func checkUpserted(org string, rec *crmv1.Record, schema *crmv1.ModuleSchema) error {
	switch {
	case org == "" || rec.GetId() == "" || rec.GetModule() == "":
		return fmt.Errorf("record upserted without org, module or id: %w", ErrInvalidEvent)
	case schema.GetModule() != rec.GetModule():
		return fmt.Errorf("record %s/%s upserted with the schema of %q: %w", rec.GetModule(), rec.GetId(), schema.GetModule(), ErrInvalidEvent)
	}
	return nil
}

// apply stores the record v views, whose encoding is raw; v's strings
// and raw may view a message's bytes, so what is kept is copied (to the
// arena).
func (s *Store) apply(org string, v *recView, schema *crmv1.ModuleSchema, raw []byte) bool {
	t := s.table(org, v.module, true)
	t.mu.Lock()
	defer t.mu.Unlock()
	id, ver := v.id, v.version
	if dv, ok := t.tombstones[id]; ok {
		if ver <= dv.version {
			return false
		}
		delete(t.tombstones, id)
	}
	slot, at := t.index.find(id, t)
	exists := at >= 0
	i := int(at)
	if exists && ver <= t.rows[i].version {
		return false
	}
	t.schema = schema
	sortKey, vals, layout := t.build(v, schema)
	r := row{version: ver, sortHead: head(sortKey)}
	if exists {
		t.blobs.drop(t.rows[i].blob)
	}
	r.blob = t.blobs.add(id, sortKey, raw)
	if !exists {
		i = len(t.rows)
		t.rows = append(t.rows, r)
		t.index.insert(slot, id, int32(i))
		t.sortHeads = append(t.sortHeads, 0)
		t.rowLayout = append(t.rowLayout, 0)
		for slot := range t.cols {
			t.cols[slot].grow()
		}
	}
	t.rows[i] = r
	t.sortHeads[i] = r.sortHead
	t.rowLayout[i] = layout
	for slot := range t.cols {
		val := absent
		if slot < len(vals) {
			val = vals[slot]
		}
		t.cols[slot].set(i, val, t.minDead)
	}
	clear(vals) // build's scratch: hold on to none of this record's strings
	if t.blobs.wasteful(t.minDead) {
		t.blobs.compact(t.rows)
	}
	return true
}

// id is row i's record id, a view of the arena.
func (t *table) id(i int32) string { return t.blobs.id(t.rows[i].blob) }

// ApplyDeleted removes the record unless it holds a version at or above the
// delete's, and remembers the delete so older upserts stay out. It reports
// whether anything changed.
func (s *Store) ApplyDeleted(ev *crmv1.RecordDeleted) (bool, error) {
	org, module, id, v := ev.GetEnvelope().GetOrgId(), ev.GetModule(), ev.GetRecordId(), ev.GetVersion()
	if org == "" || module == "" || id == "" {
		return false, fmt.Errorf("record deleted without org, module or id: %w", ErrInvalidEvent)
	}
	t := s.table(org, module, true)
	t.mu.Lock()
	defer t.mu.Unlock()
	if dv, ok := t.tombstones[id]; ok && v <= dv.version {
		return false, nil
	}
	if slot, at := t.index.find(id, t); at >= 0 {
		i := int(at)
		if v <= t.rows[i].version {
			return false, nil
		}
		t.index.remove(slot)
		t.blobs.drop(t.rows[i].blob)
		last := len(t.rows) - 1
		if i != last {
			moved, _ := t.index.find(t.id(int32(last)), t)
			t.index.set(moved, at)
			t.rows[i] = t.rows[last]
			t.sortHeads[i] = t.sortHeads[last]
			t.rowLayout[i] = t.rowLayout[last]
		}
		t.rows = t.rows[:last]
		t.sortHeads = t.sortHeads[:last]
		t.rowLayout = t.rowLayout[:last]
		for slot := range t.cols {
			t.cols[slot].remove(i, t.minDead)
		}
		if t.blobs.wasteful(t.minDead) {
			t.blobs.compact(t.rows)
		}
	}
	t.tombstones[id] = tombstone{version: v, at: s.now().Unix()}
	return true, nil
}

// CompactTombstones forgets the deletes applied before cutoff, so an
// upsert older than one of them counts again, and returns how many it
// dropped. A table's tombstones are copied to a new map when most go, since
// a map never shrinks.
func (s *Store) CompactTombstones(cutoff time.Time) int {
	s.mu.RLock()
	tables := make([]*table, 0, len(s.tables))
	for _, t := range s.tables {
		tables = append(tables, t)
	}
	s.mu.RUnlock()
	before, dropped := cutoff.Unix(), 0
	for _, t := range tables {
		t.mu.Lock()
		n := len(t.tombstones)
		maps.DeleteFunc(t.tombstones, func(_ string, d tombstone) bool { return d.at < before })
		if left := len(t.tombstones); left < n {
			dropped += n - left
			if left < n/2 { // maps.Clone would keep the capacity
				kept := make(map[string]tombstone, left)
				maps.Copy(kept, t.tombstones)
				t.tombstones = kept
			}
		}
		t.mu.Unlock()
	}
	return dropped
}

// Tombstones counts the deletes remembered.
func (s *Store) Tombstones() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for _, t := range s.tables {
		t.mu.RLock()
		n += len(t.tombstones)
		t.mu.RUnlock()
	}
	return n
}

// build folds a record into its sort key (a view of rec or of build's
// own) and its values by slot, giving slots (and columns) to fields the
// table has not seen yet, and returns the layout of its text-like fields.
func (t *table) build(rec *recView, schema *crmv1.ModuleSchema) (string, []value, int32) {
	var sortKey string
	vals, layout := t.valsBuf[:0], t.layoutBuf[:0]
	defer func() { t.valsBuf, t.layoutBuf = vals[:0], layout }()
	for _, f := range schema.GetFields() {
		class := filter.ClassOf(f.GetType())
		if class == filter.NotSearchable {
			continue
		}
		slot, ok := t.slots[f.GetApiName()]
		if !ok {
			slot = len(t.slots)
			t.slots[f.GetApiName()] = slot
			t.cols = append(t.cols, newColumn(len(t.rows), max(cap(t.rows), 1)))
		}
		for len(vals) <= slot {
			vals = append(vals, absent)
		}
		c := &vals[slot]
		var texts []string
		if v := rec.field(f.GetApiName()); v != nil {
			switch v.kind {
			case kindText, kindLookup:
				texts = []string{v.text}
			case kindNumber:
				c.num = v.num
				texts = []string{strconv.FormatFloat(v.num, 'f', -1, 64)}
			case kindBoolean:
				c.num = 0
				if v.boolean {
					c.num = 1
				}
			case kindMulti:
				folded := make([]cell, len(v.multi))
				for i, s := range v.multi {
					text := strings.Clone(filter.Fold(f.GetType(), s)) // kept: its own copy
					folded[i] = cell{head: head(text), text: text}
				}
				c.multi, c.hasMulti = folded, true
				texts = v.multi
			}
		}
		if len(texts) == 1 {
			c.text = filter.Fold(f.GetType(), texts[0])
		}
		if class == filter.TextLike {
			layout = append(layout, slot)
			switch len(texts) {
			case 0:
			case 1:
				c.words, c.offers = strings.ToLower(texts[0]), true
			default:
				lower := make([]string, len(texts))
				for i, s := range texts {
					lower[i] = strings.ToLower(s)
				}
				c.words, c.offers = strings.Join(lower, "\x00"), true
			}
		}
		if f.GetApiName() == schema.GetDisplayField() && len(texts) > 0 {
			sortKey = strings.ToLower(texts[0])
		}
	}
	for i := range vals { // once every mention of each field is in
		if c := &vals[i]; c.offers && c.words == c.text {
			c.words, c.same = "", true
		}
	}
	return sortKey, vals, t.layoutOf(layout)
}

// layoutOf returns the number of a layout, adding it if it is new.
func (t *table) layoutOf(layout []int) int32 {
	for i, l := range t.layouts {
		if slices.Equal(l, layout) {
			return int32(i)
		}
	}
	t.layouts = append(t.layouts, slices.Clone(layout))
	return int32(len(t.layouts) - 1)
}

// Schema returns the module's field metadata as the last applied upsert
// carried it; callers must not modify it.
func (s *Store) Schema(org, module string) (*crmv1.ModuleSchema, bool) {
	t := s.table(org, module, false)
	if t == nil {
		return nil, false
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.schema, t.schema != nil
}

// Get returns one record, decoded afresh.
func (s *Store) Get(org, module, id string) (*crmv1.Record, bool, error) {
	t := s.table(org, module, false)
	if t == nil {
		return nil, false, nil
	}
	t.mu.RLock()
	_, i := t.index.find(id, t)
	var raw []byte
	if i >= 0 {
		raw = t.blobs.raw(t.rows[i].blob)
	}
	t.mu.RUnlock()
	if i < 0 {
		return nil, false, nil
	}
	rec, err := decode(raw)
	return rec, err == nil, err
}

// Result is a page of matching records, in display order, and how many
// records matched in all.
type Result struct {
	Records []*crmv1.Record
	Total   int
}

// Search returns the first limit records matching q (by display name, then
// id) and the number of matches. An org or module with no records gives an
// empty result.
func (s *Store) Search(org string, q *filter.Query, limit int) (Result, error) {
	t := s.table(org, q.Module, false)
	if t == nil {
		return Result{}, nil
	}
	limit = max(limit, 0)
	t.mu.RLock()
	top, total := t.scan(q, limit)
	raws := make([][]byte, len(top))
	for i, r := range top {
		raws[i] = t.blobs.raw(t.rows[r.i].blob) // the arena's bytes never change
	}
	t.mu.RUnlock()

	res := Result{Records: make([]*crmv1.Record, len(raws)), Total: total}
	for i, raw := range raws {
		rec, err := decode(raw)
		if err != nil {
			return Result{}, err
		}
		res.Records[i] = rec
	}
	return res, nil
}

func decode(raw []byte) (*crmv1.Record, error) {
	rec := &crmv1.Record{}
	if err := proto.Unmarshal(raw, rec); err != nil {
		return nil, fmt.Errorf("decoding a stored record: %w", err)
	}
	return rec, nil
}
