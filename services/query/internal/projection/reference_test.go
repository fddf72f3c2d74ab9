package projection

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	"github.com/crmslack/crmslack/services/query/internal/filter"
	"github.com/crmslack/crmslack/services/query/internal/slash"
)

// refStore is the naive model the projection must agree with: the latest
// version of each record with the schema it came with, and every search a
// loop over them that folds each value afresh and asks filter's own
// matching. It keeps no columns, no arenas and no bitsets.
type refStore struct {
	recs  map[string]refRec
	tombs map[string]refTomb
	// slots: every searchable field of a schema an applied upsert carried.
	slots map[string]bool
}

// refTomb is a delete's version and the minute of the history it came.
type refTomb struct{ v, at int64 }

type refRec struct {
	rec    *crmv1.Record
	schema *crmv1.ModuleSchema
}

func newRefStore() *refStore {
	return &refStore{recs: map[string]refRec{}, tombs: map[string]refTomb{}, slots: map[string]bool{}}
}

func (m *refStore) upsert(rec *crmv1.Record, schema *crmv1.ModuleSchema) bool {
	id, v := rec.GetId(), rec.GetVersion()
	if dv, ok := m.tombs[id]; ok && v <= dv.v {
		return false
	}
	if cur, ok := m.recs[id]; ok && v <= cur.rec.GetVersion() {
		return false
	}
	delete(m.tombs, id)
	m.recs[id] = refRec{rec, schema}
	for _, f := range schema.GetFields() {
		if filter.ClassOf(f.GetType()) != filter.NotSearchable {
			m.slots[f.GetApiName()] = true
		}
	}
	return true
}

func (m *refStore) delete(id string, v, at int64) bool {
	if dv, ok := m.tombs[id]; ok && v <= dv.v {
		return false
	}
	if cur, ok := m.recs[id]; ok {
		if v <= cur.rec.GetVersion() {
			return false
		}
		delete(m.recs, id)
	}
	m.tombs[id] = refTomb{v, at}
	return true
}

// compact forgets the deletes that came before minute cutoff.
func (m *refStore) compact(cutoff int64) int {
	n := 0
	for id, d := range m.tombs {
		if d.at < cutoff {
			delete(m.tombs, id)
			n++
		}
	}
	return n
}

// texts is what a value says as text, as the projection reads it.
func texts(fv *crmv1.FieldValue) []string {
	switch v := fv.GetKind().(type) {
	case *crmv1.FieldValue_Text:
		return []string{v.Text}
	case *crmv1.FieldValue_Lookup:
		return []string{v.Lookup.GetName()}
	case *crmv1.FieldValue_Number:
		return []string{strconv.FormatFloat(v.Number, 'f', -1, 64)}
	case *crmv1.FieldValue_Multi:
		return v.Multi.GetValues()
	}
	return nil
}

// refMatchField: does the record's value of f pass any of f's tests?
func refMatchField(r refRec, f *filter.Field) bool {
	text, num := "", math.NaN()
	var multi []string
	hasMulti := false
	for _, meta := range r.schema.GetFields() {
		if meta.GetApiName() != f.APIName || filter.ClassOf(meta.GetType()) == filter.NotSearchable {
			continue
		}
		fv := r.rec.GetFields()[f.APIName]
		switch v := fv.GetKind().(type) {
		case *crmv1.FieldValue_Number:
			num = v.Number
		case *crmv1.FieldValue_Boolean:
			num = 0
			if v.Boolean {
				num = 1
			}
		case *crmv1.FieldValue_Multi:
			hasMulti = true
			multi = nil
			for _, s := range v.Multi.GetValues() {
				multi = append(multi, filter.Fold(meta.GetType(), s))
			}
		}
		if ts := texts(fv); len(ts) == 1 {
			text = filter.Fold(meta.GetType(), ts[0])
		}
	}
	for _, t := range f.Tests {
		switch {
		case f.Class != filter.TextLike:
			if t.MatchNumber(num) {
				return true
			}
		case f.Type == crmv1.FieldType_FIELD_TYPE_MULTI_PICKLIST && hasMulti:
			for _, v := range multi {
				if t.MatchText(v) {
					return true
				}
			}
		default:
			if t.MatchText(text) {
				return true
			}
		}
	}
	return false
}

// refWords: does every word appear in one of the record's text-like values?
// Values are joined with NUL, as the projection always has.
func refWords(r refRec, words []string) bool {
	var hay []string
	for _, meta := range r.schema.GetFields() {
		if filter.ClassOf(meta.GetType()) == filter.TextLike {
			for _, s := range texts(r.rec.GetFields()[meta.GetApiName()]) {
				hay = append(hay, strings.ToLower(s))
			}
		}
	}
	h := strings.Join(hay, "\x00")
	for _, w := range words {
		if !strings.Contains(h, w) {
			return false
		}
	}
	return true
}

func refSortKey(r refRec) string {
	key := ""
	for _, meta := range r.schema.GetFields() {
		if meta.GetApiName() == r.schema.GetDisplayField() && filter.ClassOf(meta.GetType()) != filter.NotSearchable {
			if ts := texts(r.rec.GetFields()[meta.GetApiName()]); len(ts) > 0 {
				key = strings.ToLower(ts[0])
			}
		}
	}
	return key
}

func (m *refStore) search(q *filter.Query, limit int) ([]string, int) {
	for _, f := range q.Fields {
		if !m.slots[f.APIName] {
			return nil, 0
		}
	}
	type hit struct{ key, id string }
	var hits []hit
recs:
	for id, r := range m.recs {
		for i := range q.Fields {
			if !refMatchField(r, &q.Fields[i]) {
				continue recs
			}
		}
		if !refWords(r, q.Words) {
			continue
		}
		hits = append(hits, hit{refSortKey(r), id})
	}
	slices.SortFunc(hits, func(a, b hit) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	var ids []string
	for _, h := range hits[:min(max(limit, 0), len(hits))] {
		ids = append(ids, h.id)
	}
	return ids, len(hits)
}

// Random material: mixed case, the folding edge cases filter.Fold handles
// (ß, dotted and dotless i, the Kelvin sign, final sigma, titlecase
// digraphs, combining marks), NUL, and phone numbers written several
// ways. Records carry valid UTF-8 only (proto3 strings refuse anything
// else); needles may also be bytes that are not UTF-8, 0xFF and 0xFE among
// them, or a character cut in two.
var refTokens = []string{
	"Zylker", "zyl", "ZYLKERTON", "Peter", "peter", "Watson", "wat", "son", "a", "ab", "b",
	"Straße", "STRASSE", "ß", "İstanbul", "İ", "i̇", "ı", "I", "KELVIN", "\u212a", "ΣΟΦΙΑ", "ς", "σ", "ǅ", "ǆ", "café", "cafe\u0301", "é",
	"a\x00b", "\x00", "\xc3\xa9", "\xef\xbf\xbd",
	"555-0101", "(555) 0101", "+1 555", "0101", "5", "555",
	"", " ", "Ada Admin", "Met at the booth",
}

var refRawNeedles = []string{"\xff", "x\xfey", "\xc3", "\xa9", "\xffzyl", "a\xff"}

func refPhrase(rng *rand.Rand) string {
	parts := make([]string, rng.IntN(4))
	for i := range parts {
		parts[i] = refTokens[rng.IntN(len(refTokens))]
	}
	s := strings.Join(parts, "")
	if rng.IntN(20) == 0 {
		s = strings.Repeat(s+"long ", 20) // dead space piles up faster
	}
	return s
}

var refNumbers = []float64{0, 1, -2, 1.5, 33, 150000, 1e21, 555, math.Inf(1), math.Inf(-1), math.NaN(), math.Copysign(0, -1),
	math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64}

type refField struct {
	api string
	t   crmv1.FieldType
}

// refSchemas are two versions of one module: the second drops a field,
// adds one and changes the type of others, so rows written under either
// meet queries bound to either.
func refSchemas() []*crmv1.ModuleSchema {
	mk := func(display string, fs ...refField) *crmv1.ModuleSchema {
		s := &crmv1.ModuleSchema{Module: "M", DisplayField: display}
		for _, f := range fs {
			s.Fields = append(s.Fields, &crmv1.FieldMeta{ApiName: f.api, Label: f.api, Type: f.t})
		}
		return s
	}
	return []*crmv1.ModuleSchema{
		mk("Name",
			refField{"Name", crmv1.FieldType_FIELD_TYPE_SINGLE_LINE},
			refField{"Company", crmv1.FieldType_FIELD_TYPE_SINGLE_LINE},
			refField{"Phone", crmv1.FieldType_FIELD_TYPE_PHONE},
			refField{"Email", crmv1.FieldType_FIELD_TYPE_EMAIL},
			refField{"Source", crmv1.FieldType_FIELD_TYPE_PICKLIST},
			refField{"Tags", crmv1.FieldType_FIELD_TYPE_MULTI_PICKLIST},
			refField{"Owner", crmv1.FieldType_FIELD_TYPE_OWNER},
			refField{"Revenue", crmv1.FieldType_FIELD_TYPE_CURRENCY},
			refField{"Opt_Out", crmv1.FieldType_FIELD_TYPE_BOOLEAN},
			refField{"Site", crmv1.FieldType_FIELD_TYPE_URL},
		),
		mk("Company",
			refField{"Name", crmv1.FieldType_FIELD_TYPE_MULTI_LINE},
			refField{"Company", crmv1.FieldType_FIELD_TYPE_LOOKUP},
			refField{"Phone", crmv1.FieldType_FIELD_TYPE_SINGLE_LINE},
			refField{"Tags", crmv1.FieldType_FIELD_TYPE_PICKLIST},
			refField{"Revenue", crmv1.FieldType_FIELD_TYPE_SINGLE_LINE},
			refField{"Opt_Out", crmv1.FieldType_FIELD_TYPE_PHONE},
			refField{"Age", crmv1.FieldType_FIELD_TYPE_INTEGER},
			refField{"Site", crmv1.FieldType_FIELD_TYPE_DATE},
		),
	}
}

// refValue: usually what the field's type calls for, sometimes any kind.
func refValue(rng *rand.Rand, t crmv1.FieldType) *crmv1.FieldValue {
	kind := rng.IntN(6)
	if rng.IntN(5) > 0 {
		switch filter.ClassOf(t) {
		case filter.Numeric:
			kind = 1
		case filter.Boolean:
			kind = 2
		default:
			kind = 0
			if t == crmv1.FieldType_FIELD_TYPE_MULTI_PICKLIST {
				kind = 3
			} else if t == crmv1.FieldType_FIELD_TYPE_OWNER || t == crmv1.FieldType_FIELD_TYPE_LOOKUP {
				kind = 4
			}
		}
	}
	switch kind {
	case 0:
		return &crmv1.FieldValue{Kind: &crmv1.FieldValue_Text{Text: refPhrase(rng)}}
	case 1:
		return &crmv1.FieldValue{Kind: &crmv1.FieldValue_Number{Number: refNumbers[rng.IntN(len(refNumbers))]}}
	case 2:
		return &crmv1.FieldValue{Kind: &crmv1.FieldValue_Boolean{Boolean: rng.IntN(2) == 0}}
	case 3:
		vals := make([]string, rng.IntN(4))
		for i := range vals {
			vals[i] = refPhrase(rng)
		}
		return &crmv1.FieldValue{Kind: &crmv1.FieldValue_Multi{Multi: &crmv1.StringList{Values: vals}}}
	case 4:
		return &crmv1.FieldValue{Kind: &crmv1.FieldValue_Lookup{Lookup: &crmv1.LookupValue{Id: "u", Name: refPhrase(rng)}}}
	}
	return &crmv1.FieldValue{Kind: &crmv1.FieldValue_Date{Date: "2024-01-02"}}
}

func refRecord(rng *rand.Rand, id string, v int64, schema *crmv1.ModuleSchema) *crmv1.Record {
	rec := &crmv1.Record{Module: "M", Id: id, Version: v, Fields: map[string]*crmv1.FieldValue{}}
	for _, f := range schema.GetFields() {
		if rng.IntN(4) > 0 {
			rec.Fields[f.GetApiName()] = refValue(rng, f.GetType())
		}
	}
	return rec
}

// refNeedle: a token or a piece of one (which may cut a character in
// two), usually folded as filter.Bind would, sometimes left raw.
func refNeedle(rng *rand.Rand, t crmv1.FieldType) string {
	s := refTokens[rng.IntN(len(refTokens))]
	if rng.IntN(3) == 0 && len(s) > 1 {
		i := rng.IntN(len(s))
		s = s[i : i+1+rng.IntN(len(s)-i)]
	}
	switch rng.IntN(16) {
	case 0:
		s = refRawNeedles[rng.IntN(len(refRawNeedles))]
	case 1:
	default:
		s = filter.Fold(t, s)
	}
	if s == "" && rng.IntN(4) > 0 {
		s = "a" // Bind refuses empty values; keep a few to pin their meaning
	}
	return s
}

func refQuery(rng *rand.Rand, schemas []*crmv1.ModuleSchema) *filter.Query {
	q := &filter.Query{Module: "M"}
	switch rng.IntN(4) {
	case 0:
		q.Kind = filter.KindList
	case 1:
		q.Kind = filter.KindGlobalSearch
		for range 1 + rng.IntN(3) {
			q.Words = append(q.Words, strings.ToLower(refNeedle(rng, crmv1.FieldType_FIELD_TYPE_SINGLE_LINE)))
		}
	default:
		q.Kind = filter.KindCriteria
		seen := map[string]bool{}
		for range []int{1, 1, 2, 3}[rng.IntN(4)] {
			schema := schemas[rng.IntN(len(schemas))]
			meta := schema.GetFields()[rng.IntN(len(schema.GetFields()))]
			if rng.IntN(30) == 0 {
				meta = &crmv1.FieldMeta{ApiName: "Nowhere", Type: crmv1.FieldType_FIELD_TYPE_SINGLE_LINE}
			}
			class := filter.ClassOf(meta.GetType())
			if class == filter.NotSearchable || seen[meta.GetApiName()] {
				continue
			}
			seen[meta.GetApiName()] = true
			f := filter.Field{APIName: meta.GetApiName(), Label: meta.GetLabel(), Type: meta.GetType(), Class: class}
			for range 1 + rng.IntN(3) {
				var t filter.Test
				switch class {
				case filter.TextLike:
					t.Comparator = []slash.Comparator{slash.StartsWith, slash.EndsWith, slash.Is, slash.Equals, slash.Contains}[rng.IntN(5)]
					t.Text = refNeedle(rng, meta.GetType())
				default:
					t.Comparator = []slash.Comparator{slash.Equals, slash.Greater, slash.Less, slash.GreaterOrEqual, slash.LessOrEqual}[rng.IntN(5)]
					t.Number = refNumbers[rng.IntN(len(refNumbers))]
				}
				if rng.IntN(40) == 0 {
					t.Comparator = slash.Comparator(1 + rng.IntN(9)) // one that does not fit the class
				}
				f.Tests = append(f.Tests, t)
			}
			q.Fields = append(q.Fields, f)
		}
	}
	return q
}

// checkAgainstReference runs one random history of upserts and deletes on
// stores (one for each way of planning a search) and on the model,
// comparing random searches along the way.
func checkAgainstReference(t testing.TB, seed uint64, ops int, minDead int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	m := newRefStore()
	// Each op is a minute of a made-up clock, which stamps tombstones.
	clock := time.Unix(0, 0)
	minute := func() int64 { return int64(clock.Sub(time.Unix(0, 0)) / time.Minute) }
	stores := map[plan]*Store{}
	for _, p := range []plan{planCheaper, planScan, planProbe} {
		stores[p] = newStore(minDead, p)
		stores[p].now = func() time.Time { return clock }
	}
	schemas := refSchemas()
	version := int64(0)
	for op := range ops {
		clock = clock.Add(time.Minute)
		id := fmt.Sprintf("r%02d", rng.IntN(40))
		version++
		v := version - int64(rng.IntN(4)) // some stale, some duplicates
		if rng.IntN(25) == 0 {
			// Compaction forgets deletes older than a horizon of a few
			// minutes, so stale upserts right after it count again.
			cutoff := minute() - int64(rng.IntN(8))
			want := m.compact(cutoff)
			for p, s := range stores {
				if got := s.CompactTombstones(time.Unix(0, 0).Add(time.Duration(cutoff) * time.Minute)); got != want {
					t.Fatalf("seed %d op %d plan %d: compaction before minute %d dropped %d tombstones, model %d", seed, op, p, cutoff, got, want)
				}
				if got := s.Tombstones(); got != len(m.tombs) {
					t.Fatalf("seed %d op %d plan %d: %d tombstones kept, model %d", seed, op, p, got, len(m.tombs))
				}
			}
		}
		if rng.IntN(5) == 0 {
			want := m.delete(id, v, minute())
			for p, s := range stores {
				got, err := s.ApplyDeleted(&crmv1.RecordDeleted{Envelope: &commonv1.Envelope{OrgId: "o"}, Module: "M", RecordId: id, Version: v})
				if err != nil || got != want {
					t.Fatalf("seed %d op %d plan %d: delete %s v%d applied %v (%v), model says %v", seed, op, p, id, v, got, err, want)
				}
			}
		} else {
			schema := schemas[0]
			if rng.IntN(4) == 0 {
				schema = schemas[1]
			}
			rec := refRecord(rng, id, v, schema)
			want := m.upsert(rec, schema)
			for p, s := range stores {
				ev := &crmv1.RecordUpserted{Envelope: &commonv1.Envelope{OrgId: "o"}, Record: rec, Schema: schema}
				var got bool
				var err error
				if p == planProbe { // one store keeps the encoding it is given
					raw, merr := proto.Marshal(rec)
					if merr != nil {
						t.Fatal(merr)
					}
					got, err = s.ApplyEncoded("o", schema, raw)
				} else {
					got, err = s.ApplyUpserted(ev)
				}
				if err != nil || got != want {
					t.Fatalf("seed %d op %d plan %d: upsert %s v%d applied %v (%v), model says %v", seed, op, p, id, v, got, err, want)
				}
			}
		}
		if op%5 != 4 {
			continue
		}
		for range 4 {
			q := refQuery(rng, schemas)
			limit := []int{0, 3, 10, 50}[rng.IntN(4)]
			wantIDs, wantTotal := m.search(q, limit)
			for p, s := range stores {
				res, err := s.Search("o", q, limit)
				if err != nil {
					t.Fatal(err)
				}
				var gotIDs []string
				for _, r := range res.Records {
					gotIDs = append(gotIDs, r.GetId())
				}
				if !slices.Equal(gotIDs, wantIDs) || res.Total != wantTotal {
					t.Fatalf("seed %d op %d plan %d: query %+v limit %d:\n got %q (total %d)\nwant %q (total %d)", seed, op, p, q, limit, gotIDs, res.Total, wantIDs, wantTotal)
				}
			}
		}
	}
}

// TestSearchAgreesWithReference: random histories, with dicts rebuilt at
// the production threshold (rarely reached here) or whenever dead space
// passes live space.
func TestSearchAgreesWithReference(t *testing.T) {
	t.Parallel()
	for seed := range uint64(24) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			minDead := 0
			if seed%3 == 0 {
				minDead = defaultMinDead
			}
			checkAgainstReference(t, seed, 400, minDead)
		})
	}
}

func FuzzSearchAgreesWithReference(f *testing.F) {
	for seed := range uint64(4) {
		f.Add(seed, uint16(200), false)
	}
	f.Fuzz(func(t *testing.T, seed uint64, ops uint16, lazy bool) {
		minDead := 0
		if lazy {
			minDead = defaultMinDead
		}
		checkAgainstReference(t, seed, int(ops%1000), minDead)
	})
}
