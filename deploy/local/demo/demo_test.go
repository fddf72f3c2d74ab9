package demo

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

func TestEventsAreDeterministicAndConsistent(t *testing.T) {
	t.Parallel()
	a, err := Events("acme", time.Unix(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Events("acme", time.Unix(2, 0))
	if err != nil {
		t.Fatal(err)
	}
	if want := len(Users()) + NumAccounts + NumContacts + NumLeads + NumDeals; len(a) != want || len(b) != want {
		t.Fatalf("%d and %d events, want %d", len(a), len(b), want)
	}
	ids := map[string]bool{}
	records := map[string]bool{}
	for i, ev := range a {
		id := ev.Msg.GetEnvelope().GetEventId()
		if id != b[i].Msg.GetEnvelope().GetEventId() {
			t.Fatalf("event %d: id %s, then %s: a second load would publish again", i, id, b[i].Msg.GetEnvelope().GetEventId())
		}
		if ids[id] {
			t.Fatalf("event id %s twice", id)
		}
		ids[id] = true
		if !strings.HasPrefix(ev.Subject, "crm.v1.acme.") {
			t.Errorf("subject %s: not the org's", ev.Subject)
		}
		if up, ok := ev.Msg.(*crmv1.RecordUpserted); ok {
			r := up.GetRecord()
			records[r.GetModule()+"/"+r.GetId()] = true
			if r.GetFields()[up.GetSchema().GetDisplayField()].GetText() == "" || r.GetOwner().GetEmail() == "" {
				t.Errorf("%s/%s has no name or owner", r.GetModule(), r.GetId())
			}
		}
	}
	// Lookups point at records loaded before them.
	for _, ev := range a {
		up, ok := ev.Msg.(*crmv1.RecordUpserted)
		if !ok {
			continue
		}
		for name, v := range up.GetRecord().GetFields() {
			if l := v.GetLookup(); l != nil && l.GetModule() != "Users" && !records[l.GetModule()+"/"+l.GetId()] {
				t.Errorf("%s/%s %s points at %s/%s, which is not in the data", up.GetRecord().GetModule(), up.GetRecord().GetId(), name, l.GetModule(), l.GetId())
			}
		}
	}
	if !proto.Equal(a[len(a)-1].Msg.(*crmv1.RecordUpserted).GetRecord(), b[len(b)-1].Msg.(*crmv1.RecordUpserted).GetRecord()) {
		t.Error("the same record differs between two loads")
	}
	for _, u := range Users() {
		if got, ok := UserByEmail(strings.ToUpper(u.Email)); !ok || got != u {
			t.Errorf("UserByEmail(%s) = %v, %v", u.Email, got, ok)
		}
	}
}
