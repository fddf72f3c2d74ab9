package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// insertChunk bounds the documents of one insert command, well inside
// MongoDB's 16 MB command for the small rows written this way.
const insertChunk = 1000

// InsertAll inserts docs with unordered insert commands; a duplicate key
// counts as already written (a replayed event), any other write error is
// returned. It is the hot paths' batched write. Not InsertMany: that decodes
// every document's _id back to return the ids (a 4 KB reader per document,
// a sixth of what delivery allocated per post), and no caller reads them.
//
// A document that is a bson.Raw is taken as it is: a caller that encodes
// each document as it queues it (bson.Marshal) keeps a batch of bytes
// instead of a batch of values.
func InsertAll[T any](ctx context.Context, coll *mongo.Collection, docs []T) error {
	buf := commandBuffers.Get().(*[]byte)
	defer putCommandBuffer(buf)
	for len(docs) > 0 {
		n := min(len(docs), insertChunk)
		cmd, err := appendInsert((*buf)[:0], coll.Name(), docs[:n])
		*buf = cmd
		if err != nil {
			return fmt.Errorf("encoding %d documents for %s: %w", n, coll.Name(), err)
		}
		err = coll.Database().RunCommand(ctx, bson.Raw(cmd)).Err()
		if err != nil && !onlyDuplicates(err) {
			return fmt.Errorf("inserting %d documents into %s: %w", n, coll.Name(), err)
		}
		docs = docs[n:]
	}
	return nil
}

// commandBuffers keep the insert commands' encodings between batches: the
// driver encodes a command into a buffer it grows by doubling from empty,
// which for a 500-row batch was ~3 KB per row (delivery's audit row, a
// seventh of what delivery allocated per post).
var commandBuffers = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledCommand is the largest buffer kept: one chunk of small rows.
const maxPooledCommand = 4 << 20

func putCommandBuffer(buf *[]byte) {
	if cap(*buf) <= maxPooledCommand {
		commandBuffers.Put(buf)
	}
}

// appendInsert appends to dst the insert command of docs into collection:
// {insert: collection, documents: docs, ordered: false}.
func appendInsert[T any](dst []byte, collection string, docs []T) ([]byte, error) {
	start, dst := bsoncore.AppendDocumentStart(dst)
	dst = bsoncore.AppendStringElement(dst, "insert", collection)
	array, dst := bsoncore.AppendArrayElementStart(dst, "documents")
	for i, d := range docs {
		raw, ok := any(d).(bson.Raw)
		var err error
		if ok {
			err = raw.Validate() // one bad document would fail the whole command
		} else {
			raw, err = bson.Marshal(d)
		}
		if err != nil {
			return dst, fmt.Errorf("document %d: %w", i, err)
		}
		// The element's key is its index, written in place (no string).
		dst = append(dst, byte(bson.TypeEmbeddedDocument))
		dst = strconv.AppendInt(dst, int64(i), 10)
		dst = append(dst, 0)
		dst = append(dst, raw...)
	}
	dst, err := bsoncore.AppendArrayEnd(dst, array)
	if err != nil {
		return dst, err
	}
	dst = bsoncore.AppendBooleanElement(dst, "ordered", false)
	return bsoncore.AppendDocumentEnd(dst, start)
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
