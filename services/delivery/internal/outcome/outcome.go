// Package outcome turns a settled command into its DeliverySucceeded or
// DeliveryFailed event. The event id is derived from the command id, the
// same for both kinds, so a command delivered twice (a crash before the ack)
// reports one outcome: JetStream drops the second publish as a duplicate
// inside its window, and a consumer keyed by event id sees one either way.
package outcome

import (
	"crypto/sha1"
	"encoding/hex"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	integrationv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/integration/v1"

	"github.com/crmslack/crmslack/services/delivery/internal/command"
	"github.com/crmslack/crmslack/services/delivery/internal/deliver"
)

// Producer is the envelope's producer of every outcome.
const Producer = "delivery"

// namespace is the UUID namespace of outcome event ids.
var namespace = [16]byte{0x6b, 0x1f, 0x3c, 0x52, 0x9e, 0x0d, 0x4a, 0x8b, 0x91, 0x7e, 0x25, 0xc4, 0xd0, 0x33, 0x18, 0xaf}

// EventID is the outcome event id of command commandID: a name-based
// (version 5) UUID, stable across deliveries of the command.
func EventID(commandID string) string {
	h := sha1.New()
	h.Write(namespace[:])
	h.Write([]byte("delivery-outcome:" + commandID))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

// Event builds the outcome event of cmd and the subject it goes to.
func Event(cmd *command.Command, out deliver.Outcome, now time.Time) (string, bus.Event) {
	env := &commonv1.Envelope{
		EventId:       EventID(cmd.ID),
		OrgId:         cmd.Org,
		OccurredAt:    timestamppb.New(now),
		SchemaVersion: 1,
		Producer:      Producer,
		CausationId:   cmd.ID,
	}
	if cmd.Traceparent != "" {
		env.Trace = &commonv1.TraceContext{Traceparent: cmd.Traceparent}
	}
	var requested *timestamppb.Timestamp
	if !cmd.RequestedAt.IsZero() {
		requested = timestamppb.New(cmd.RequestedAt)
	}
	if out.Failure != nil {
		return topology.Delivery(cmd.Org, "failed"), &integrationv1.DeliveryFailed{
			Envelope:       env,
			CommandId:      cmd.ID,
			IdempotencyKey: cmd.IdempotencyKey,
			TeamId:         cmd.Team,
			Code:           out.Failure.Code,
			Reason:         out.Failure.Reason,
			Attempts:       out.Attempts,
			Origin:         cmd.Origin,
			Kind:           string(cmd.Kind),
			ChannelId:      out.Channel,
			RequestedAt:    requested,
		}
	}
	return topology.Delivery(cmd.Org, "succeeded"), &integrationv1.DeliverySucceeded{
		Envelope:       env,
		CommandId:      cmd.ID,
		IdempotencyKey: cmd.IdempotencyKey,
		TeamId:         cmd.Team,
		ChannelId:      out.Channel,
		Ts:             out.TS,
		Permalink:      out.Permalink,
		FileIds:        out.FileIDs,
		Attempts:       out.Attempts,
		Origin:         cmd.Origin,
		Duplicate:      out.Duplicate,
		Kind:           string(cmd.Kind),
		RequestedAt:    requested,
	}
}
