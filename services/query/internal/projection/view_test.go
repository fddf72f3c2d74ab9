package projection

import (
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

// fieldsOf is a view's fields by name, multi values as one slice, for
// comparing views built two ways.
func fieldsOf(v *recView) map[string]fieldView {
	m := map[string]fieldView{}
	for _, f := range v.fields {
		f.multi = slices.Clone(f.multi)
		if f.kind != kindMulti {
			f.multi = nil
		}
		if f.kind != kindText && f.kind != kindLookup {
			f.text = ""
		}
		if f.kind != kindNumber {
			f.num = 0
		}
		if f.kind != kindBoolean {
			f.boolean = false
		}
		m[f.name] = f
	}
	return m
}

func sameView(a, b *recView) bool {
	if a.module != b.module || a.id != b.id || a.version != b.version {
		return false
	}
	fa, fb := fieldsOf(a), fieldsOf(b)
	return maps.EqualFunc(fa, fb, func(x, y fieldView) bool {
		return x.kind == y.kind && x.text == y.text && (x.num == y.num || x.num != x.num && y.num != y.num) &&
			x.boolean == y.boolean && slices.Equal(x.multi, y.multi)
	})
}

// checkParse: where parseRecord reads an encoding, it reads what
// proto.Unmarshal does.
func checkParse(t *testing.T, data []byte) {
	t.Helper()
	var got recView
	if parseRecord(data, &got) != nil {
		return // the caller decodes such a record instead
	}
	rec := &crmv1.Record{}
	if err := proto.Unmarshal(data, rec); err != nil {
		t.Fatalf("parseRecord read what proto.Unmarshal refuses (%v): %x", err, data)
	}
	var want recView
	viewOf(rec, &want)
	if !sameView(&got, &want) {
		t.Fatalf("parseRecord read %+v, proto.Unmarshal %+v", got, want)
	}
}

// TestParseRecordReadsWhatUnmarshalReads: the records of random histories,
// encoded as the persister does, read the same both ways.
func TestParseRecordReadsWhatUnmarshalReads(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	schemas := refSchemas()
	for i := range 2000 {
		rec := refRecord(rng, "r1", int64(i), schemas[i%2])
		data, err := proto.MarshalOptions{Deterministic: true}.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		var v recView
		if err := parseRecord(data, &v); err != nil {
			t.Fatalf("parseRecord refused a record's encoding: %v", err)
		}
		checkParse(t, data)
	}
}

func FuzzParseRecord(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 8 {
		data, _ := proto.Marshal(refRecord(rng, "r1", int64(i), refSchemas()[i%2]))
		f.Add(data)
	}
	f.Fuzz(checkParse)
}
