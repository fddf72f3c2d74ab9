package delivery_test

import (
	"strings"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/topology"
	integrationv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/integration/v1"

	"github.com/crmslack/crmslack/services/delivery/internal/partition"
)

// TestDeadLetterPublishFailsRedelivered: a command whose failure calls for a
// dead letter, while the dead-letter stream cannot store it, is nak'ed, not
// terminated: it comes back, nothing is reported meanwhile, and once the
// stream is back it is dead-lettered and reported failed exactly once.
func TestDeadLetterPublishFailsRedelivered(t *testing.T) {
	t.Parallel()
	const org = "org-dlq-down"
	e := newEnv(t, envOptions{})
	e.setAccess(org, true, acme)
	waitOwned(t, e.start(e.config()), testPartitions)
	ctx := testkit.Context(t)
	if err := e.js.DeleteStream(ctx, bus.DeadLetterStream); err != nil {
		t.Fatal(err)
	}

	// The bot is not in the channel: SLACK_ERROR, which is dead-lettered.
	cmd := postTo(org, acme, acmeRandom, "to a channel the app is not in")
	id := cmd.GetEnvelope().GetEventId()
	e.publish(cmd)
	cons, err := e.js.Consumer(ctx, topology.StreamSlackOut, partition.Durable(partition.Of(org, acme, testPartitions)))
	if err != nil {
		t.Fatal(err)
	}
	for {
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.NumRedelivered > 0 || info.Delivered.Consumer >= 2 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the command was not redelivered after the dead-letter publish failed")
		case <-time.After(50 * time.Millisecond):
		}
	}
	if s, f := e.out.get(id); len(s)+len(f) != 0 {
		t.Fatalf("an outcome was reported before the dead letter was stored: %d succeeded, %d failed", len(s), len(f))
	}

	if _, err := e.bus.EnsureDeadLetterStream(ctx); err != nil {
		t.Fatal(err)
	}
	e.out.wait(t, 30*time.Second, id)
	f := e.out.mustFail(t, id)
	if f.GetCode() != integrationv1.DeliveryFailureCode_DELIVERY_FAILURE_CODE_SLACK_ERROR {
		t.Errorf("failure %s (%s), want SLACK_ERROR", f.GetCode(), f.GetReason())
	}
	letters := deadLetters(t, e.js)
	if len(letters) != 1 || !strings.Contains(letters[0].Headers().Get(bus.HeaderDLQReason), "not a member") {
		t.Fatalf("%d dead letters, want the one command with its reason", len(letters))
	}
	if got := e.textsIn(acmeRandom); len(got) != 0 {
		t.Errorf("messages in the channel: %q, want none", got)
	}
}
