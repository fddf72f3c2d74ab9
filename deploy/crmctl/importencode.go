package main

import (
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

// Field numbers of crm.v1.Record's fields map and of crm.v1.FieldValue's
// kinds (records.proto), and of a map entry's key and value.
const (
	recordFields                                                     = 5
	valueText, valueNumber, valueBoolean, valueDate                  = 1, 2, 3, 4
	valueDatetime, valueMulti, valueLookup                           = 5, 6, 7
	entryKey, entryValue                            protowire.Number = 1, 2
)

// appendRecord appends proto.Marshal's encoding of rec to b, but for its
// map of fields: those are written here, where the library walks a map by
// reflection and sizes every value before writing it, which was most of
// an import's parsing. The rest of the record is encoded by the library,
// without the map.
func appendRecord(b []byte, rec *crmv1.Record) ([]byte, error) {
	rest := &crmv1.Record{Module: rec.GetModule(), Id: rec.GetId(), Version: rec.GetVersion(), Owner: rec.GetOwner(), ModifiedAt: rec.GetModifiedAt(), Url: rec.GetUrl()}
	b, err := proto.MarshalOptions{}.MarshalAppend(b, rest)
	if err != nil {
		return nil, err
	}
	var val []byte
	for name, v := range rec.GetFields() {
		if val, err = appendValue(val[:0], v); err != nil {
			return nil, fmt.Errorf("field %s: %w", name, err)
		}
		size := protowire.SizeTag(entryKey) + protowire.SizeBytes(len(name)) + protowire.SizeTag(entryValue) + protowire.SizeBytes(len(val))
		b = protowire.AppendTag(b, recordFields, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(size))
		b = protowire.AppendTag(b, entryKey, protowire.BytesType)
		b = protowire.AppendString(b, name)
		b = protowire.AppendTag(b, entryValue, protowire.BytesType)
		b = protowire.AppendBytes(b, val)
	}
	return b, nil
}

// appendValue appends a FieldValue's encoding: its one kind, written
// whatever its value, as a oneof's member is.
func appendValue(b []byte, v *crmv1.FieldValue) ([]byte, error) {
	var msg proto.Message
	var num protowire.Number
	switch k := v.GetKind().(type) {
	case nil:
		return b, nil
	case *crmv1.FieldValue_Text:
		return protowire.AppendString(protowire.AppendTag(b, valueText, protowire.BytesType), k.Text), nil
	case *crmv1.FieldValue_Number:
		return protowire.AppendFixed64(protowire.AppendTag(b, valueNumber, protowire.Fixed64Type), math.Float64bits(k.Number)), nil
	case *crmv1.FieldValue_Boolean:
		return protowire.AppendVarint(protowire.AppendTag(b, valueBoolean, protowire.VarintType), protowire.EncodeBool(k.Boolean)), nil
	case *crmv1.FieldValue_Date:
		return protowire.AppendString(protowire.AppendTag(b, valueDate, protowire.BytesType), k.Date), nil
	case *crmv1.FieldValue_Datetime:
		msg, num = k.Datetime, valueDatetime
	case *crmv1.FieldValue_Multi:
		msg, num = k.Multi, valueMulti
	case *crmv1.FieldValue_Lookup:
		msg, num = k.Lookup, valueLookup
	default:
		return nil, fmt.Errorf("a value of kind %T", k)
	}
	data, err := proto.Marshal(msg)
	if err != nil {
		return nil, err
	}
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), data), nil
}
