package demo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

// Publisher publishes an event on the CRM's bus and returns once it is
// stored (or was already: a duplicate is success).
type Publisher interface {
	Publish(ctx context.Context, subject string, ev bus.Event) error
}

// Event is one event of the data set with its subject.
type Event struct {
	Subject string
	Msg     bus.Event
}

// eventID names a version of a thing of the data set: the same org,
// thing and version always give the same id, so the stream drops a second
// load as duplicates and the consumers' compare-by-version after that.
func eventID(org, kind, id string, version int64) string {
	sum := sha256.Sum256([]byte(org + "\x00" + kind + "\x00" + id + "\x00" + strconv.FormatInt(version, 10)))
	return "demo-" + hex.EncodeToString(sum[:16])
}

// Envelope is an envelope from the demo data's producer.
func Envelope(org, id string, at time.Time) *commonv1.Envelope {
	return &commonv1.Envelope{EventId: id, OrgId: org, OccurredAt: timestamppb.New(at), SchemaVersion: 1, Producer: "crmslack-demo"}
}

// Events is the whole data set for org as the CRM would publish it: its
// users first, then each module's records with the module's schema.
func Events(org string, at time.Time) ([]Event, error) {
	var out []Event
	for _, u := range Users() {
		role := "Sales"
		if u.Admin {
			role = "Administrator"
		}
		ev := &crmv1.CrmUserUpserted{Envelope: Envelope(org, eventID(org, "user", u.ID, 1), at),
			User: &crmv1.CrmUser{Id: u.ID, Email: u.Email, FullName: u.FullName, Role: role, Profile: role, IsAdmin: u.Admin,
				TimeZone: "Europe/Paris", Active: true, Version: 1}}
		out = append(out, Event{Subject: topology.CrmUser(org, "upserted"), Msg: ev})
	}
	schemas := Schemas()
	for _, module := range Modules {
		for _, r := range Records(module) {
			ev := &crmv1.RecordUpserted{Envelope: Envelope(org, eventID(org, module, r.GetId(), r.GetVersion()), at), Record: r, Schema: schemas[module]}
			subject, err := topology.SubjectFor(ev)
			if err != nil {
				return nil, fmt.Errorf("demo %s %s: %w", module, r.GetId(), err)
			}
			out = append(out, Event{Subject: subject, Msg: ev})
		}
	}
	return out, nil
}

// Load publishes the data set for org and returns how many events it
// published; loading again publishes the same ids, which change nothing.
func Load(ctx context.Context, p Publisher, org string, at time.Time) (int, error) {
	evs, err := Events(org, at)
	if err != nil {
		return 0, err
	}
	for i, ev := range evs {
		if err := p.Publish(ctx, ev.Subject, ev.Msg); err != nil {
			return i, fmt.Errorf("demo data: event %d of %d on %s: %w (loading again is safe)", i+1, len(evs), ev.Subject, err)
		}
	}
	return len(evs), nil
}
