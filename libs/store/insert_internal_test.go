package store

import (
	"bytes"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestAppendInsertIsTheDriversEncoding: the command built in place is
// byte for byte what the driver encodes from the same command as a bson.D,
// for values and for documents the caller encoded.
func TestAppendInsertIsTheDriversEncoding(t *testing.T) {
	type row struct {
		ID   string   `bson:"_id"`
		N    int      `bson:"n"`
		Tags []string `bson:"tags,omitempty"`
	}
	var docs []row
	var raws []bson.Raw
	for i := range 120 { // keys of one, two and three digits
		r := row{ID: string(rune('a' + i%26)), N: i}
		if i%3 == 0 {
			r.Tags = []string{"x", "y"}
		}
		docs = append(docs, r)
		b, err := bson.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		raws = append(raws, b)
	}
	want, err := bson.Marshal(bson.D{{Key: "insert", Value: "rows"}, {Key: "documents", Value: docs}, {Key: "ordered", Value: false}})
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]func() ([]byte, error){
		"values":  func() ([]byte, error) { return appendInsert(nil, "rows", docs) },
		"encoded": func() ([]byte, error) { return appendInsert(make([]byte, 3, 64), "rows", raws) },
	} {
		b, err := got()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if name == "encoded" {
			b = b[3:]
		}
		if !bytes.Equal(b, want) {
			t.Errorf("%s: the command differs from the driver's encoding:\n got %x\nwant %x", name, b, want)
		}
	}
}
