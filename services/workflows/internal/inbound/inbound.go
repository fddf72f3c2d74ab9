// Package inbound is workflows' NATS side: the durable consumers of rule
// firings, of module schemas (from record upserts and imports), of team removals and
// of the egress's outcomes. Each hands its event to the app layer and
// follows libs/bus's handler contract.
package inbound

import (
	"context"
	"fmt"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/topology"

	"github.com/crmslack/crmslack/services/workflows/internal/app"
)

// Durable consumer names. Each is a contract: renaming one replays its
// stream (message ids keep a replayed firing from posting twice, but the
// replay is wasted work).
const (
	DurableTriggers    = "workflows-triggers"
	DurableSchemas     = "workflows-schemas"
	DurableImported    = "workflows-schemas-imported"
	DurableTeamRemoved = "workflows-team-removed"
	DurableSucceeded   = "workflows-delivery-succeeded"
	DurableFailed      = "workflows-delivery-failed"
)

// TriggerSpec consumes rule firings: the hot path. A handler renders in
// memory (tens of microseconds) and then waits: for the stream's acks and
// for the history writer's next batched insert. The default handler time
// (27 s) is ample.
// 512 handlers at a time, mostly waiting, fill the writer's batches (an
// insert of 500 documents costs FerretDB little more than one of 50).
// The default retry schedule (about an hour) rides out a bus or database
// outage; an instant action later than that is dead-lettered, not posted.
func TriggerSpec() bus.ConsumerSpec {
	return bus.ConsumerSpec{
		Stream:         topology.StreamCRM,
		Durable:        DurableTriggers,
		FilterSubjects: []string{topology.WorkflowTriggered("*")},
		MaxDeliver:     bus.DefaultMaxDeliver,
		BackOff:        bus.DefaultBackOff(),
		MaxAckPending:  4096,
		Concurrency:    512,
	}
}

// SchemaSpec reads every record upsert for its schema; almost all are
// the schema already known and cost a comparison.
func SchemaSpec() bus.ConsumerSpec {
	return bus.ConsumerSpec{
		Stream:         topology.StreamCRM,
		Durable:        DurableSchemas,
		FilterSubjects: []string{topology.RecordUpserted("*", "*")},
		MaxDeliver:     bus.DefaultMaxDeliver,
		BackOff:        bus.DefaultBackOff(),
		MaxAckPending:  4096,
		Concurrency:    4,
	}
}

// ImportedSpec reads every batch of backfilled records (crmctl import) for
// its schema, as SchemaSpec does upserts: a module known only from an
// import is known here too. Nothing else of an import concerns workflows
// (a backfill is no change in the CRM: rules fire on the CRM's own
// WorkflowRuleTriggered). A batch is hundreds of records, so few arrive.
func ImportedSpec() bus.ConsumerSpec {
	spec := SchemaSpec()
	spec.Durable = DurableImported
	spec.FilterSubjects = []string{topology.RecordsImported("*", "*")}
	spec.MaxAckPending = bus.DefaultMaxAckPending
	spec.Concurrency = 1
	return spec
}

// TeamRemovedSpec consumes team removals, one at a time (rare, and each
// deletes several actions).
func TeamRemovedSpec() bus.ConsumerSpec {
	return bus.ConsumerSpec{
		Stream:         topology.StreamIntegration,
		Durable:        DurableTeamRemoved,
		FilterSubjects: []string{topology.Team("*", "removed")},
		MaxDeliver:     bus.DefaultMaxDeliver,
		BackOff:        bus.DefaultBackOff(),
		MaxAckPending:  100,
		Concurrency:    1,
	}
}

// Delivery outcomes take topology.OutcomeConsumer's settings, batched into
// the history: many handlers wait on the writer, as for triggers.
const outcomePending, outcomeConcurrency = 4096, 256

// Subscribe starts every consumer. On error the ones started are stopped.
func Subscribe(ctx context.Context, b *bus.Bus, svc *app.Service) ([]*bus.Subscription, error) {
	subs, err := bus.SubscribeAll(ctx,
		bus.Bind(b, SchemaSpec(), svc.HandleRecordUpserted),
		bus.Bind(b, ImportedSpec(), svc.HandleRecordsImported),
		bus.Bind(b, TriggerSpec(), svc.HandleTriggered),
		bus.Bind(b, TeamRemovedSpec(), svc.HandleTeamRemoved),
		bus.Bind(b, topology.OutcomeConsumer(DurableSucceeded, "succeeded", outcomePending, outcomeConcurrency), svc.HandleDeliverySucceeded),
		bus.Bind(b, topology.OutcomeConsumer(DurableFailed, "failed", outcomePending, outcomeConcurrency), svc.HandleDeliveryFailed),
	)
	if err != nil {
		return nil, fmt.Errorf("subscribing: %w", err)
	}
	return subs, nil
}
