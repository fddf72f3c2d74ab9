package audit

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestEncodeIsTheDriversEncoding: a row written by hand is the bytes the
// bson encoder makes of it from its struct tags: with every field set (set
// by reflection, so that a field added to Row and not to encode fails
// here), with every optional field empty, and for rows as recorded.
func TestEncodeIsTheDriversEncoding(t *testing.T) {
	at := time.Date(2026, 12, 3, 9, 0, 0, 123_000_000, time.UTC)
	full := Row{}
	v := reflect.ValueOf(&full).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(v.Type().Field(i).Name + "-value")
		case reflect.Int32:
			f.SetInt(int64(i + 1))
		case reflect.Uint32:
			f.SetUint(uint64(i + 1))
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Slice:
			f.Set(reflect.ValueOf([]string{"F1", "F2", "F3"}))
		case reflect.Struct:
			f.Set(reflect.ValueOf(at.Add(time.Duration(i) * time.Hour)))
		default:
			t.Fatalf("field %s of kind %s: teach encode and this test", v.Type().Field(i).Name, f.Kind())
		}
	}
	for name, r := range map[string]Row{
		"every field":       full,
		"only the required": {ID: "id", CommandID: "c", IdempotencyKey: "k", OrgID: "o", TeamID: "T", Status: 2},
		"posted": {
			ID: RowID(nil, "ev"), CommandID: "cmd", IdempotencyKey: "rule:rec", OrgID: "org", TeamID: "T1",
			ChannelID: "C1", TS: "1.000002", Permalink: "https://x.slack.com/archives/C1/p1000002", Status: 1,
			Origin: "workflows", Kind: "post", Attempts: 1, RequestedAt: at, CompletedAt: at.Add(time.Second),
		},
		"failed": {ID: "id", OrgID: "org", Status: 2, FailureCode: 5, Reason: "channel_not_found", Attempts: 3, CompletedAt: at},
	} {
		want, err := bson.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.encode(); !bytes.Equal(got, want) {
			t.Errorf("%s:\n got %s\nwant %s", name, got, bson.Raw(want))
		}
	}
}
