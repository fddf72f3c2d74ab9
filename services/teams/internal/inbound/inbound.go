// Package inbound consumes the Slack events the gateway verified and
// published (slack.in.v1.<team>.event.<type>) and hands app_uninstalled and
// tokens_revoked to the registry.
package inbound

import (
	"context"
	"errors"
	"time"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/topology"
	slackv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/slack/v1"

	"github.com/crmslack/crmslack/services/teams/internal/app"
	"github.com/crmslack/crmslack/services/teams/internal/registry"
)

// Durable is the consumer's name: a contract (renaming it replays the
// stream), listed in docs/conventions.md.
const Durable = "teams-slack-events"

// Spec is the consumer. Events are rare (installs and uninstalls), so one
// handler at a time in stream order keeps an uninstall and a reinstall of
// one team in order. Handling is a few small Mongo writes and a publish:
// the default handler time is ample; 20 deliveries with the default back-off ride out
// an hour-long outage of Mongo or the bus.
func Spec() bus.ConsumerSpec {
	return bus.ConsumerSpec{
		Stream:         topology.StreamSlackIn,
		Durable:        Durable,
		FilterSubjects: []string{"slack.in.v1.*.event.>"},
		MaxDeliver:     20,
		BackOff:        bus.DefaultBackOff(),
		MaxAckPending:  100,
		Concurrency:    1,
	}
}

// Handler turns a SlackEventReceived into the registry's command. A
// malformed event (no team id) cannot get better by retrying: it is
// dead-lettered.
func Handler(svc *app.Service) bus.Handler[*slackv1.SlackEventReceived] {
	return func(ctx context.Context, ev *slackv1.SlackEventReceived) error {
		in := app.SlackEvent{
			EventID:         ev.GetSlackEventId(),
			TeamID:          ev.GetTeamId(),
			Type:            ev.GetType(),
			RevokedBotUsers: ev.GetRevokedBotUserIds(),
		}
		if ev.GetEventTime() > 0 {
			in.EventTime = time.Unix(ev.GetEventTime(), 0)
		}
		err := svc.HandleSlackEvent(ctx, in)
		if errors.Is(err, registry.ErrInvalidArgument) {
			return bus.Permanent(err)
		}
		return err
	}
}

// Subscribe starts the consumer.
func Subscribe(ctx context.Context, b *bus.Bus, svc *app.Service) (*bus.Subscription, error) {
	return bus.Subscribe(ctx, b, Spec(), Handler(svc))
}
