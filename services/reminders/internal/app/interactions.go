package app

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	remindersv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/reminders/v1"
	slackv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/slack/v1"

	"github.com/crmslack/crmslack/services/reminders/internal/remind"
)

// HandleInteraction answers the Snooze and Mark done buttons of a
// reminder; clicks on other buttons are not reminders' and are ignored.
//
// Trust: the click is a block_actions payload whose signature the gateway
// verified. The buttons exist only in a reminder DM'd to the user they
// name, and their value is signed with REMINDERS_BUTTON_KEY and names the
// team it was sent in, so a click cannot name another reminder, user, org
// or team. What is checked again: the org in the button is one the team
// serves, the org's integration is on and the team active, the team is
// the one the user chose, and the activity still exists.
func (s *Service) HandleInteraction(ctx context.Context, ev *slackv1.InteractionReceived) error {
	action := ev.GetActionId()
	if action != remind.ActionSnooze && action != remind.ActionDone {
		return nil
	}
	b, err := s.cfg.Buttons.Open(ev.GetValue())
	if err != nil {
		s.log.WarnContext(ctx, "reminder button with an invalid value; ignored", "team", ev.GetTeamId(), "err", err)
		return nil
	}
	if b.Team != ev.GetTeamId() {
		s.log.WarnContext(ctx, "reminder button clicked in another team than it was sent to; ignored", "team", ev.GetTeamId(), "button_team", b.Team)
		return nil
	}
	if env := ev.GetEnvelope().GetOrgId(); !strings.HasPrefix(env, "slack:") && env != b.Org {
		s.log.WarnContext(ctx, "reminder button of another org than the team's; ignored", "org", env, "button_org", b.Org)
		return nil
	}
	if !s.access.TeamActive(b.Org, ev.GetTeamId()) {
		s.log.InfoContext(ctx, "reminder button from a team the org does not reach; ignored", "org", b.Org, "team", ev.GetTeamId())
		return nil
	}
	if p, ok := s.prefs.Get(b.Org, b.User); !ok || !p.GetEnabled() || p.GetTeamId() != ev.GetTeamId() {
		return s.respond(ctx, b.Org, ev, "Reminders via Slack are off for you, or go to another workspace now: nothing was changed.")
	}
	st, _, err := s.activities.Get(ctx, b.Org, b.Activity)
	if err != nil {
		return err
	}
	switch st.GetLifecycle() {
	case remindersv1.ActivityLifecycle_ACTIVITY_LIFECYCLE_ACTIVE:
	case remindersv1.ActivityLifecycle_ACTIVITY_LIFECYCLE_CANCELLED:
		return s.respond(ctx, b.Org, ev, "This "+kindOf(st.GetActivity().GetKind())+" was cancelled: no more reminders.")
	case remindersv1.ActivityLifecycle_ACTIVITY_LIFECYCLE_COMPLETED:
		return s.respond(ctx, b.Org, ev, "This "+kindOf(st.GetActivity().GetKind())+" is already done.")
	default:
		return s.respond(ctx, b.Org, ev, "This activity is no longer in the CRM.")
	}
	if action == remind.ActionSnooze {
		return s.snooze(ctx, b, st, ev)
	}
	return s.markDone(ctx, b, st, ev)
}

func (s *Service) snooze(ctx context.Context, b remind.Button, st *remindersv1.ActivityState, ev *slackv1.InteractionReceived) error {
	at := s.now().Add(s.cfg.Snooze)
	t := remind.Timer{Slot: remind.Slot{User: b.User, Offset: b.Offset, Snooze: true}, Version: st.GetVersion(), At: at, Snoozes: b.Snoozes + 1}
	if err := s.timers.Set(ctx, b.Org, b.Activity, t, remind.Due(b.Org, b.Activity, t, b.Offset, at, s.now())); err != nil {
		return err
	}
	p, _ := s.prefs.Get(b.Org, b.User)
	loc := location(p.GetTimeZone(), st.GetActivity().GetTimeZone())
	return s.respond(ctx, b.Org, ev, fmt.Sprintf("Snoozed: I'll remind you again at %s.", at.In(loc).Format("15:04")))
}

func (s *Service) markDone(ctx context.Context, b remind.Button, st *remindersv1.ActivityState, ev *slackv1.InteractionReceived) error {
	a := st.GetActivity()
	if a.GetKind() != crmv1.ActivityKind_ACTIVITY_KIND_TASK {
		return s.respond(ctx, b.Org, ev, "Only tasks can be marked done from Slack.")
	}
	person, _ := remind.Person(a, b.User)
	cmd := &crmv1.CompleteActivityRequested{
		// One command per task version and user, however often clicked.
		Envelope: s.envelope(b.Org, fmt.Sprintf("reminder-done:%s:%s:%d:%s", b.Org, a.GetId(), st.GetVersion(), b.User),
			ev.GetEnvelope().GetEventId()),
		ActivityId: a.GetId(), Kind: a.GetKind(), Version: st.GetVersion(),
		RequestedBy: &commonv1.CrmUserRef{Id: b.User, Name: person.GetName(), Email: person.GetEmail()},
		SlackTeamId: ev.GetTeamId(), SlackUserId: ev.GetUserId(), RequestedAt: timestamppb.New(s.now()),
	}
	if err := s.pub.Publish(ctx, topology.ActivityCommand(b.Org, "complete"), cmd); err != nil {
		return fmt.Errorf("asking the CRM to complete %s: %w", a.GetId(), err)
	}
	return s.respond(ctx, b.Org, ev, fmt.Sprintf("Marked done: the CRM closes the task %q.", a.GetSubject()))
}

// respond answers the click through its response_url, as a new message
// under the reminder, once per click.
func (s *Service) respond(ctx context.Context, org string, ev *slackv1.InteractionReceived, text string) error {
	if ev.GetResponseUrl() == "" {
		return nil
	}
	id := ev.GetEnvelope().GetEventId() + "/reminders"
	r := &slackv1.RespondToURL{
		Envelope: s.envelope(org, id, ev.GetEnvelope().GetEventId()), IdempotencyKey: id,
		TeamId: ev.GetTeamId(), ResponseUrl: ev.GetResponseUrl(),
		ResponseType: slackv1.ResponseType_RESPONSE_TYPE_EPHEMERAL, Text: text,
		Origin: &slackv1.Origin{Service: remind.Producer, Purpose: PurposeReminder},
	}
	if err := s.pub.Publish(ctx, topology.SlackOut(org, ev.GetTeamId(), "respond"), r); err != nil {
		return fmt.Errorf("answering a reminder button: %w", err)
	}
	return nil
}
