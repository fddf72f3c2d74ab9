package store

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// insertChunk bounds the documents of one insert command, well inside
// MongoDB's 16 MB command for the small rows written this way.
const insertChunk = 1000

// InsertAll inserts docs with unordered insert commands; a duplicate key
// counts as already written (a replayed event), any other write error is
// returned. It is the hot paths' batched write. Not InsertMany: that decodes
// every document's _id back to return the ids (a 4 KB reader per document,
// a sixth of what delivery allocated per post), and no caller reads them.
func InsertAll[T any](ctx context.Context, coll *mongo.Collection, docs []T) error {
	for len(docs) > 0 {
		n := min(len(docs), insertChunk)
		err := coll.Database().RunCommand(ctx, bson.D{
			{Key: "insert", Value: coll.Name()}, {Key: "documents", Value: docs[:n]}, {Key: "ordered", Value: false},
		}).Err()
		if err != nil && !onlyDuplicates(err) {
			return fmt.Errorf("inserting %d documents into %s: %w", n, coll.Name(), err)
		}
		docs = docs[n:]
	}
	return nil
}

// onlyDuplicates reports whether every write error of an unordered insert
// is a duplicate key (the driver reports a reply's write errors as a
// WriteException).
func onlyDuplicates(err error) bool {
	var we mongo.WriteException
	if !errors.As(err, &we) || we.WriteConcernError != nil || len(we.WriteErrors) == 0 {
		return false
	}
	for _, e := range we.WriteErrors {
		if e.Code != 11000 && e.Code != 11001 && e.Code != 12582 {
			return false
		}
	}
	return true
}
