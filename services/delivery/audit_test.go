package delivery_test

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.mongodb.org/mongo-driver/v2/bson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	integrationv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/integration/v1"

	"github.com/crmslack/crmslack/services/delivery/internal/audit"
)

// TestAuditRowsFromTheSettler: a post's audit row is written by the settler
// (no consumer reads the outcomes back), and the durables an earlier
// version fed the trail from are drained into it, then removed.
func TestAuditRowsFromTheSettler(t *testing.T) {
	t.Parallel()
	const org = "org-audit-settler"
	e := newEnv(t, envOptions{})
	e.setAccess(org, true, acme)
	ctx := testkit.Context(t)

	// An outcome an earlier version published, its row not yet written,
	// held by that version's durable.
	if _, err := e.js.CreateOrUpdateConsumer(ctx, topology.StreamIntegration,
		audit.ConsumerSpec(audit.DurableSucceeded, "succeeded", 16).ConsumerConfig()); err != nil {
		t.Fatal(err)
	}
	legacy := &integrationv1.DeliverySucceeded{
		Envelope:  &commonv1.Envelope{EventId: "legacy-outcome-1", OrgId: org, OccurredAt: timestamppb.Now(), Producer: "delivery"},
		CommandId: "legacy-cmd-1", TeamId: acme, ChannelId: acmeGeneral, Ts: "1700000000.000100",
	}
	if _, err := e.bus.Publish(ctx, topology.Delivery(org, "succeeded"), legacy); err != nil {
		t.Fatal(err)
	}

	e.start(e.config())
	cmd := postTo(org, acme, acmeGeneral, "audited")
	e.publish(cmd)
	e.out.wait(t, 20*time.Second, cmd.GetEnvelope().GetEventId())

	rows := testkit.StoreOn(t, e.mongo, "delivery").Collection(audit.Collection)
	testkit.Eventually(t, 20*time.Second, func() bool {
		n, err := rows.CountDocuments(ctx, bson.D{{Key: "org_id", Value: org}})
		return err == nil && n == 2
	}, "the post's row and the legacy outcome's row are not both in the trail")
	testkit.Eventually(t, 20*time.Second, func() bool {
		_, err := e.js.Consumer(ctx, topology.StreamIntegration, audit.DurableSucceeded)
		return errors.Is(err, jetstream.ErrConsumerNotFound)
	}, "the legacy audit durable was not removed once drained")
	stream, err := e.js.Stream(ctx, topology.StreamIntegration)
	if err != nil {
		t.Fatal(err)
	}
	l := stream.ListConsumers(ctx)
	for c := range l.Info() {
		if c.Name == audit.DurableFailed || c.Name == audit.DurableSucceeded {
			t.Errorf("consumer %s on %s: the outcomes are read back", c.Name, topology.StreamIntegration)
		}
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
}
