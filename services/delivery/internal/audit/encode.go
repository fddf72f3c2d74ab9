package audit

import (
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// rowCap is the room a row's encoding starts with: a posted row is
// ~470 bytes; a failure's long reason grows it once.
const rowCap = 512

// encode is r as the bson encoder writes it from its struct tags (the
// same bytes, TestEncodeIsTheDriversEncoding), written by hand because the
// encoder's reflection and boxing cost as much again as the row's bytes
// for the one row written per post.
func (r *Row) encode() bson.Raw {
	start, dst := bsoncore.AppendDocumentStart(make([]byte, 0, rowCap))
	dst = bsoncore.AppendStringElement(dst, "_id", r.ID)
	dst = bsoncore.AppendStringElement(dst, "command_id", r.CommandID)
	dst = bsoncore.AppendStringElement(dst, "idempotency_key", r.IdempotencyKey)
	dst = bsoncore.AppendStringElement(dst, "org_id", r.OrgID)
	dst = bsoncore.AppendStringElement(dst, "team_id", r.TeamID)
	dst = appendNonEmpty(dst, "channel_id", r.ChannelID)
	dst = appendNonEmpty(dst, "ts", r.TS)
	dst = appendNonEmpty(dst, "permalink", r.Permalink)
	if len(r.FileIDs) > 0 {
		var array int32
		array, dst = bsoncore.AppendArrayElementStart(dst, "file_ids")
		for i, id := range r.FileIDs {
			dst = bsoncore.AppendStringElement(dst, strconv.Itoa(i), id)
		}
		dst, _ = bsoncore.AppendArrayEnd(dst, array)
	}
	dst = bsoncore.AppendInt32Element(dst, "status", r.Status)
	if r.FailureCode != 0 {
		dst = bsoncore.AppendInt32Element(dst, "failure_code", r.FailureCode)
	}
	dst = appendNonEmpty(dst, "reason", r.Reason)
	dst = appendNonEmpty(dst, "origin", r.Origin)
	dst = appendNonEmpty(dst, "kind", r.Kind)
	dst = bsoncore.AppendInt64Element(dst, "attempts", int64(r.Attempts))
	if r.Duplicate {
		dst = bsoncore.AppendBooleanElement(dst, "duplicate", true)
	}
	if !r.RequestedAt.IsZero() {
		dst = bsoncore.AppendDateTimeElement(dst, "requested_at", r.RequestedAt.UnixMilli())
	}
	dst = bsoncore.AppendDateTimeElement(dst, "completed_at", r.CompletedAt.UnixMilli())
	dst, _ = bsoncore.AppendDocumentEnd(dst, start)
	return dst
}

func appendNonEmpty(dst []byte, key, s string) []byte {
	if s == "" {
		return dst
	}
	return bsoncore.AppendStringElement(dst, key, s)
}
