package store_test

import (
	"strconv"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/crmslack/crmslack/libs/store"
	"github.com/crmslack/crmslack/libs/testkit"
)

// TestInsertAll: more documents than one command takes are all inserted; a
// replay with duplicates among new ones inserts the new ones and is no
// error; a write error other than a duplicate is returned.
func TestInsertAll(t *testing.T) {
	t.Parallel()
	s := testkit.Store(t, "insertall")
	ctx := testkit.Context(t)
	c := s.Collection("rows")
	type row struct {
		ID string `bson:"_id"`
		N  int    `bson:"n"`
	}
	rows := func(from, to int) []row {
		var out []row
		for i := from; i < to; i++ {
			out = append(out, row{ID: "r" + strconv.Itoa(i), N: i})
		}
		return out
	}
	if err := store.InsertAll(ctx, c, rows(0, 1500)); err != nil {
		t.Fatal(err)
	}
	if err := store.InsertAll(ctx, c, rows(1000, 1700)); err != nil {
		t.Fatalf("a replay with 500 duplicates: %v", err)
	}
	if n, err := c.CountDocuments(ctx, bson.D{}); err != nil || n != 1700 {
		t.Fatalf("%d documents, %v; want 1,700", n, err)
	}
	if err := store.InsertAll(ctx, c, []bson.D{{{Key: "_id", Value: bson.A{1, 2}}}}); err == nil {
		t.Fatal("an array _id was accepted; want the write error")
	}

	// Documents encoded by the caller go as they are; a malformed one
	// fails the call before anything is sent.
	var raws []bson.Raw
	for _, r := range rows(1700, 1710) {
		b, err := bson.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		raws = append(raws, b)
	}
	if err := store.InsertAll(ctx, c, raws); err != nil {
		t.Fatal(err)
	}
	var got row
	if err := c.FindOne(ctx, bson.D{{Key: "_id", Value: "r1705"}}).Decode(&got); err != nil || got.N != 1705 {
		t.Fatalf("r1705 read back as %+v, %v", got, err)
	}
	bad := append(bson.Raw{}, raws[0]...)
	bad[len(bad)-1] = 7 // no terminating zero
	if err := store.InsertAll(ctx, c, []bson.Raw{raws[1], bad}); err == nil {
		t.Fatal("a malformed document was accepted")
	}
	if n, err := c.CountDocuments(ctx, bson.D{}); err != nil || n != 1710 {
		t.Fatalf("%d documents, %v; want 1,710", n, err)
	}
}
