package projection

import (
	"errors"
	"math"
	"unicode/utf8"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

// recView is what build reads of a record: from a decoded Record
// (viewOf), or straight from a record's encoding (parseRecord), which
// saves a rebuild decoding a million records into maps of messages only to
// fold and drop them. Strings may be views of the encoding's bytes: build
// copies what it keeps.
type recView struct {
	module, id string
	version    int64
	fields     []fieldView
}

type fieldKind uint8

const (
	kindNone    fieldKind = iota // absent, or a kind build does not read (dates)
	kindText                     // text
	kindLookup                   // text: the lookup's name
	kindNumber                   // num
	kindBoolean                  // boolean
	kindMulti                    // multi
)

type fieldView struct {
	name    string
	kind    fieldKind
	text    string
	num     float64
	boolean bool
	multi   []string
}

// field returns the named field's value, nil when the record has none: a
// scan, since records have a dozen or two fields.
func (v *recView) field(name string) *fieldView {
	for i := range v.fields {
		if v.fields[i].name == name {
			return &v.fields[i]
		}
	}
	return nil
}

// reset empties v for reuse, keeping its memory.
func (v *recView) reset() {
	for i := range v.fields {
		clear(v.fields[i].multi)
		v.fields[i] = fieldView{multi: v.fields[i].multi[:0]}
	}
	*v = recView{fields: v.fields[:0]}
}

// add returns a new, empty field, reusing the memory of an earlier one.
func (v *recView) add(name string) *fieldView {
	if len(v.fields) < cap(v.fields) {
		v.fields = v.fields[:len(v.fields)+1]
	} else {
		v.fields = append(v.fields, fieldView{})
	}
	f := &v.fields[len(v.fields)-1]
	*f = fieldView{name: name, multi: f.multi[:0]}
	return f
}

// viewOf fills v from a decoded record.
func viewOf(rec *crmv1.Record, v *recView) {
	v.reset()
	v.module, v.id, v.version = rec.GetModule(), rec.GetId(), rec.GetVersion()
	for name, fv := range rec.GetFields() {
		f := v.add(name)
		switch k := fv.GetKind().(type) {
		case *crmv1.FieldValue_Text:
			f.kind, f.text = kindText, k.Text
		case *crmv1.FieldValue_Lookup:
			f.kind, f.text = kindLookup, k.Lookup.GetName()
		case *crmv1.FieldValue_Number:
			f.kind, f.num = kindNumber, k.Number
		case *crmv1.FieldValue_Boolean:
			f.kind, f.boolean = kindBoolean, k.Boolean
		case *crmv1.FieldValue_Multi:
			f.kind, f.multi = kindMulti, append(f.multi, k.Multi.GetValues()...)
		}
	}
}

// Field numbers of crm.v1.Record, FieldValue, LookupValue and StringList
// that parseRecord reads (records.proto).
const (
	recModule, recID, recVersion, recFields = 1, 2, 3, 5
	entryKey, entryValue                    = 1, 2
	fvText, fvNumber, fvBoolean             = 1, 2, 3
	fvMulti, fvLookup                       = 6, 7
	lookupName                              = 2
	listValues                              = 1
)

var errWire = errors.New("not a record encoding parseRecord reads")

// parseRecord fills v from a Record's encoding, as proto.Unmarshal would
// read it: the last of a repeated scalar wins, a repeated message merges,
// a map's later entry for a key replaces the earlier one, a oneof keeps
// its last member. Strings must be UTF-8, as proto.Unmarshal insists;
// anything it does not expect is an error, and the caller decodes the
// record instead.
func parseRecord(b []byte, v *recView) error {
	v.reset()
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return errWire
		}
		b = b[n:]
		switch {
		case num == recModule && typ == protowire.BytesType:
			s, n := consumeString(b)
			if n < 0 {
				return errWire
			}
			v.module, b = s, b[n:]
		case num == recID && typ == protowire.BytesType:
			s, n := consumeString(b)
			if n < 0 {
				return errWire
			}
			v.id, b = s, b[n:]
		case num == recVersion && typ == protowire.VarintType:
			x, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return errWire
			}
			v.version, b = int64(x), b[n:]
		case num == recFields && typ == protowire.BytesType:
			entry, n := protowire.ConsumeBytes(b)
			if n < 0 || parseEntry(entry, v) != nil {
				return errWire
			}
			b = b[n:]
		default:
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 || !valid(recChecks, num, typ, b[:n]) {
				return errWire
			}
			b = b[n:]
		}
	}
	return nil
}

// Fields parseRecord skips but proto.Unmarshal checks: a string must be
// UTF-8, a message must decode.
var (
	recChecks = map[protowire.Number]func([]byte) bool{
		4: decodes(func() proto.Message { return &commonv1.CrmUserRef{} }),   // owner
		6: decodes(func() proto.Message { return &timestamppb.Timestamp{} }), // modified_at
		7: utf8.Valid,                                                        // url
	}
	valueChecks = map[protowire.Number]func([]byte) bool{
		4: utf8.Valid,                                                        // date
		5: decodes(func() proto.Message { return &timestamppb.Timestamp{} }), // datetime
	}
	lookupChecks = map[protowire.Number]func([]byte) bool{1: utf8.Valid, 3: utf8.Valid} // id, module
)

func decodes(newMsg func() proto.Message) func([]byte) bool {
	return func(b []byte) bool { return proto.Unmarshal(b, newMsg()) == nil }
}

// valid checks a skipped field, whole (b from its value on), against
// checks: only a length-delimited value of a field named there is checked.
func valid(checks map[protowire.Number]func([]byte) bool, num protowire.Number, typ protowire.Type, b []byte) bool {
	check, ok := checks[num]
	if !ok || typ != protowire.BytesType {
		return true
	}
	v, n := protowire.ConsumeBytes(b)
	return n >= 0 && check(v)
}

// parseEntry reads one map entry: its key, then its value merged from
// every occurrence; it replaces an earlier entry with the same key.
func parseEntry(b []byte, v *recView) error {
	var key string
	var values [][]byte
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return errWire
		}
		b = b[n:]
		switch {
		case num == entryKey && typ == protowire.BytesType:
			s, n := consumeString(b)
			if n < 0 {
				return errWire
			}
			key, b = s, b[n:]
		case num == entryValue && typ == protowire.BytesType:
			val, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errWire
			}
			values, b = append(values, val), b[n:]
		default:
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return errWire
			}
			b = b[n:]
		}
	}
	for j := range v.fields { // the later entry wins: drop the earlier
		if v.fields[j].name == key {
			last := len(v.fields) - 1
			v.fields[j], v.fields[last] = v.fields[last], v.fields[j]
			v.fields = v.fields[:last]
			break
		}
	}
	f := v.add(key)
	for _, val := range values {
		if err := parseValue(val, f); err != nil {
			return err
		}
	}
	return nil
}

// parseValue merges a FieldValue's encoding into f.
func parseValue(b []byte, f *fieldView) error {
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return errWire
		}
		b = b[n:]
		switch {
		case num == fvText && typ == protowire.BytesType:
			s, n := consumeString(b)
			if n < 0 {
				return errWire
			}
			f.kind, f.text, b = kindText, s, b[n:]
		case num == fvNumber && typ == protowire.Fixed64Type:
			x, n := protowire.ConsumeFixed64(b)
			if n < 0 {
				return errWire
			}
			f.kind, f.num, b = kindNumber, math.Float64frombits(x), b[n:]
		case num == fvBoolean && typ == protowire.VarintType:
			x, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return errWire
			}
			f.kind, f.boolean, b = kindBoolean, x != 0, b[n:]
		case num == fvMulti && typ == protowire.BytesType:
			list, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errWire
			}
			if f.kind != kindMulti { // another member came between: a new list
				f.multi = f.multi[:0]
			}
			f.kind, b = kindMulti, b[n:]
			if err := parseList(list, f); err != nil {
				return err
			}
		case num == fvLookup && typ == protowire.BytesType:
			lk, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errWire
			}
			if f.kind != kindLookup {
				f.text = ""
			}
			f.kind, b = kindLookup, b[n:]
			if err := parseLookup(lk, f); err != nil {
				return err
			}
		default:
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 || !valid(valueChecks, num, typ, b[:n]) {
				return errWire
			}
			if (num == 4 || num == 5) && typ == protowire.BytesType { // a date: the oneof holds that now
				f.kind, f.text, f.multi = kindNone, "", f.multi[:0]
			}
			b = b[n:]
		}
	}
	return nil
}

func parseList(b []byte, f *fieldView) error {
	return eachString(b, listValues, nil, func(s string) { f.multi = append(f.multi, s) })
}

func parseLookup(b []byte, f *fieldView) error {
	return eachString(b, lookupName, lookupChecks, func(s string) { f.text = s })
}

// eachString calls set with each string of field num of a message's
// encoding, skipping (and checking) the other fields.
func eachString(b []byte, num protowire.Number, checks map[protowire.Number]func([]byte) bool, set func(string)) error {
	for len(b) > 0 {
		n0, typ, n := consumeTag(b)
		if n < 0 {
			return errWire
		}
		b = b[n:]
		if n0 == num && typ == protowire.BytesType {
			s, n := consumeString(b)
			if n < 0 {
				return errWire
			}
			set(s)
			b = b[n:]
			continue
		}
		if n = protowire.ConsumeFieldValue(n0, typ, b); n < 0 || !valid(checks, n0, typ, b[:n]) {
			return errWire
		}
		b = b[n:]
	}
	return nil
}

// consumeTag is protowire.ConsumeTag refusing, as proto.Unmarshal does,
// field numbers past the largest valid one.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	num, typ, n := protowire.ConsumeTag(b)
	if n >= 0 && num > protowire.MaxValidNumber {
		return 0, 0, -1
	}
	return num, typ, n
}

// consumeString reads a length-prefixed UTF-8 string as a view of b (no
// copy); n < 0 when it is not one.
func consumeString(b []byte) (string, int) {
	s, n := protowire.ConsumeBytes(b)
	if n < 0 || !utf8.Valid(s) {
		return "", -1
	}
	return unsafeString(s), n
}

// unsafeString views b as a string without copying; b must not change
// while the string is in use (a message's payload, which nothing writes).
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
