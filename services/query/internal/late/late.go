// Package late answers the /zcrm commands the gateway could not answer in
// time. The contract with the gateway:
//
//  1. The gateway calls QueryService.RunSlashCommand with a deadline well
//     under Slack's 3 seconds and, when the answer arrives in time, returns
//     it as the HTTP response. It may still publish the command
//     (slack.in.v1.<team>.command) for the record, with deferred = false;
//     nobody answers such a command again.
//  2. When the deadline passes (or the call fails), the gateway answers the
//     HTTP request at once with an ephemeral "Searching…" and publishes the
//     command with deferred = true. Only the gateway decides, in one place,
//     which of the two happened, so a command is answered synchronously or
//     late, never both and never neither.
//  3. This consumer (durable "query-commands" on SLACK_IN, filter
//     slack.in.v1.*.command) answers every deferred command whose command
//     name is one of ours (/zcrm by default) by publishing a
//     slack.v1.RespondToURL to slack.out.v1.<org>.<team>.respond for the
//     Slack egress (services/delivery). Its event id is derived from the
//     command's ("query-answer:<command event id>") and its idempotency key
//     is the command's event id, so a redelivered command is dropped by the
//     SLACK_OUT stream's duplicate window and by delivery's ledger: one
//     answer per command.
//
// A command older than the response_url's life (30 minutes, minus a
// margin) is dead-lettered: its answer could no longer be delivered.
package late

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	slackv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/slack/v1"
	"github.com/crmslack/crmslack/services/query/internal/app"
)

// Durable is the consumer's name: a contract (renaming it would answer a
// day of commands again, though the idempotency keys would stop them at
// the egress).
const Durable = "query-commands"

// MaxAge is how old a command may be and still be answered: Slack's
// response_url lives 30 minutes; the margin leaves delivery time to use it.
const MaxAge = 25 * time.Minute

// Producer names this service in envelopes.
const Producer = "query"

// Spec is the consumer. Settings, each chosen:
//   - the default AckWait and handler time: an answer takes milliseconds;
//     only a slow team registry (its calls are bounded at 1.5 s) makes it
//     longer.
//   - MaxDeliver 10 with back-off 1 s … 2 min: about 5 minutes of retries
//     while the team registry or JetStream recovers, well inside the
//     response_url's 30 minutes; then dead-lettered.
//   - Concurrency 4: answers are independent and each is a scan of memory,
//     so a burst of late commands does not queue behind one another.
//   - MaxAckPending 256: at most that many late answers in flight.
func Spec() bus.ConsumerSpec {
	return bus.ConsumerSpec{
		Stream:         topology.StreamSlackIn,
		Durable:        Durable,
		FilterSubjects: []string{topology.SlackCommand("*")},
		MaxDeliver:     10,
		BackOff:        []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute},
		MaxAckPending:  256,
		Concurrency:    4,
	}
}

// Publisher publishes an event on a subject (libs/bus in production).
type Publisher interface {
	Publish(ctx context.Context, subject string, ev bus.Event) error
}

// Handler answers deferred commands.
type Handler struct {
	Svc      *app.Service
	Pub      Publisher
	Commands []string // command names answered, e.g. "/zcrm"
	Log      *slog.Logger
	Metrics  *app.Metrics
	Now      func() time.Time
}

// Handle is the bus handler.
func (h *Handler) Handle(ctx context.Context, ev *slackv1.SlashCommandReceived) error {
	if !slices.Contains(h.Commands, ev.GetCommand()) || !ev.GetDeferred() {
		return nil // another command's, or answered synchronously
	}
	env := ev.GetEnvelope()
	if at := env.GetOccurredAt(); at != nil && h.Now().Sub(at.AsTime()) > MaxAge {
		return bus.Permanent(fmt.Errorf("command %s is %s old: its response_url has expired", env.GetEventId(), h.Now().Sub(at.AsTime()).Round(time.Second)))
	}
	if ev.GetResponseUrl() == "" || ev.GetTeamId() == "" || ev.GetUserId() == "" {
		return bus.Permanent(fmt.Errorf("command %s lacks response_url, team or user", env.GetEventId()))
	}
	start := h.Now()
	a, err := h.Svc.Answer(ctx, app.Request{Org: env.GetOrgId(), Team: ev.GetTeamId(), User: ev.GetUserId(), Channel: ev.GetChannelId(), Text: ev.GetText()})
	if err != nil {
		h.Metrics.Observe("late", "error", time.Since(start))
		if errors.Is(err, app.ErrDependency) {
			return err // temporary: retried with back-off
		}
		return bus.Permanent(err)
	}
	if a.Org == "" {
		// No org owns the team any more: the egress would refuse to send.
		h.Log.WarnContext(ctx, "late answer dropped: the team belongs to no org", "team", ev.GetTeamId(), "command_event_id", env.GetEventId())
		h.Metrics.Observe("late", a.Outcome, time.Since(start))
		return nil
	}
	blocks, err := a.JSON()
	if err != nil {
		return bus.Permanent(err)
	}
	occurred := env.GetOccurredAt()
	if occurred == nil {
		occurred = timestamppb.New(start)
	}
	out := &slackv1.RespondToURL{
		Envelope: &commonv1.Envelope{
			EventId: "query-answer:" + env.GetEventId(),
			OrgId:   a.Org,
			// The response_url's life starts with the command.
			OccurredAt:    occurred,
			SchemaVersion: 1,
			Producer:      Producer,
			CausationId:   env.GetEventId(),
		},
		IdempotencyKey: env.GetEventId(),
		TeamId:         ev.GetTeamId(),
		ResponseUrl:    ev.GetResponseUrl(),
		ResponseType:   slackv1.ResponseType_RESPONSE_TYPE_EPHEMERAL,
		Text:           a.Text,
		BlocksJson:     blocks,
		Origin:         &slackv1.Origin{Service: Producer, Purpose: "slash_command"},
	}
	team, err := topology.Token(ev.GetTeamId())
	if err != nil {
		return bus.Permanent(err)
	}
	org, err := topology.Token(a.Org)
	if err != nil {
		return bus.Permanent(err)
	}
	if err := h.Pub.Publish(ctx, topology.SlackOut(org, team, "respond"), out); err != nil {
		return fmt.Errorf("publishing the late answer: %w", err)
	}
	h.Metrics.Observe("late", a.Outcome, time.Since(start))
	h.Log.InfoContext(ctx, "late answer published", "team", ev.GetTeamId(), "org", a.Org, "outcome", a.Outcome, "command_event_id", env.GetEventId())
	return nil
}
