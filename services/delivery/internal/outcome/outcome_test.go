package outcome

import (
	"regexp"
	"testing"
	"time"

	integrationv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/integration/v1"

	"github.com/crmslack/crmslack/services/delivery/internal/command"
	"github.com/crmslack/crmslack/services/delivery/internal/deliver"
	"github.com/crmslack/crmslack/services/delivery/internal/failure"
)

var uuidV5 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestEventIDIsStableAndShared(t *testing.T) {
	t.Parallel()
	a, b := EventID("cmd-1"), EventID("cmd-1")
	if a != b || !uuidV5.MatchString(a) {
		t.Fatalf("EventID = %q, %q", a, b)
	}
	if EventID("cmd-2") == a {
		t.Fatal("two commands share an outcome id")
	}
	cmd := &command.Command{ID: "cmd-1", Org: "o1", Team: "T1", Kind: command.Post, IdempotencyKey: "k"}
	subjOK, ok := Event(cmd, deliver.Outcome{Channel: "C1", TS: "1.2"}, time.Now())
	subjKO, ko := Event(cmd, deliver.Outcome{Failure: failure.New(failure.Auth, "x")}, time.Now())
	if subjOK != "integration.v1.o1.delivery.succeeded" || subjKO != "integration.v1.o1.delivery.failed" {
		t.Fatalf("subjects %s, %s", subjOK, subjKO)
	}
	// One id for either outcome: a command reports once, whichever it is.
	if ok.GetEnvelope().GetEventId() != ko.GetEnvelope().GetEventId() || ok.GetEnvelope().GetCausationId() != "cmd-1" {
		t.Fatal("succeeded and failed outcomes of one command must share the event id")
	}
	if f := ko.(*integrationv1.DeliveryFailed); f.GetCode() != failure.Auth || f.GetKind() != "post" {
		t.Fatalf("failed event %+v", f)
	}
}
