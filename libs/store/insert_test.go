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
}
