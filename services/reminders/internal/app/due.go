package app

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	remindersv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/reminders/v1"
	slackv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/slack/v1"

	"github.com/crmslack/crmslack/services/reminders/internal/remind"
	"github.com/crmslack/crmslack/services/reminders/internal/render"
)

// PurposeReminder is the Origin purpose of reminder posts.
const PurposeReminder = "activity_reminder"

// HandleReminderDue handles a fired timer: the activity as it is now, the
// user's current choice and the team decide whether it posts, and what.
// Nothing stale posts: a cancelled, completed, moved or changed activity,
// a user who turned reminders off or left the activity, a team gone.
func (s *Service) HandleReminderDue(ctx context.Context, due *remindersv1.ReminderDue) error {
	org := due.GetEnvelope().GetOrgId()
	user := due.GetCrmUserId()
	now := s.now()
	p, ok := s.prefs.Get(org, user)
	if !ok || !p.GetEnabled() {
		s.metrics.Dropped(remind.ReasonOff)
		return nil
	}
	if !s.access.TeamActive(org, p.GetTeamId()) {
		s.metrics.Dropped(remind.ReasonNoTeam)
		s.log.InfoContext(ctx, "reminder not sent: the user's team is not active for the org", "org", org, "team", p.GetTeamId(), "user", user)
		return nil
	}
	st, _, err := s.activities.Get(ctx, org, due.GetActivityId())
	if err != nil {
		return err
	}
	v := remind.Decide(st, due, now, s.cfg.LateAfter)
	switch v.Action {
	case remind.Drop:
		s.metrics.Dropped(v.Reason)
		return nil
	case remind.Reschedule:
		t := remind.Timer{Slot: remind.Slot{User: user, Offset: due.GetOffsetMinutes()}, Version: st.GetVersion(), At: v.At}
		return s.timers.Set(ctx, org, due.GetActivityId(), t, remind.Due(org, due.GetActivityId(), t, t.Offset, t.At, s.now()))
	}
	a := st.GetActivity()
	person, _ := remind.Person(a, user)
	email := p.GetUser().GetEmail()
	if email == "" {
		email = person.GetEmail()
	}
	if email == "" {
		s.metrics.Dropped(remind.ReasonNotRecipient)
		s.log.WarnContext(ctx, "reminder not sent: no email reaches the user in Slack", "org", org, "user", user)
		return nil
	}
	late := v.Action == remind.SendLate
	value, err := s.cfg.Buttons.Seal(remind.Button{Org: org, Activity: a.GetId(), Version: due.GetVersion(), User: user,
		Offset: due.GetOffsetMinutes(), Snoozes: due.GetSnoozes(), Team: p.GetTeamId()})
	if err != nil {
		return fmt.Errorf("signing the reminder's buttons: %w", err)
	}
	msg := render.Render(render.Input{
		Activity: a, Now: now, DueAt: due.GetDueAt().AsTime(), Late: late, Loc: location(p.GetTimeZone(), a.GetTimeZone()),
		ButtonValue: value, Snooze: s.cfg.Snooze, CRMBaseURL: s.cfg.CRMBaseURL,
	})
	blocks, err := msg.BlocksJSON()
	if err != nil {
		return err
	}
	key := remind.PostKey(org, a.GetId(), due.GetVersion(), due.GetOffsetMinutes(), due.GetSnoozes(), user)
	post := &slackv1.PostMessage{
		Envelope:       s.envelope(org, key, due.GetEnvelope().GetEventId()),
		IdempotencyKey: key,
		TeamId:         p.GetTeamId(),
		Target:         &slackv1.Target{Kind: &slackv1.Target_Email{Email: email}},
		Text:           msg.Text,
		BlocksJson:     blocks,
		Origin: &slackv1.Origin{Service: remind.Producer, Purpose: PurposeReminder,
			OnBehalfOf: &commonv1.CrmUserRef{Id: user, Name: person.GetName(), Email: email}},
	}
	if err := s.pub.Publish(ctx, topology.SlackOut(org, p.GetTeamId(), "post"), post); err != nil {
		return fmt.Errorf("sending reminder %s: %w", key, err)
	}
	s.metrics.Sent(late, now.Sub(due.GetDueAt().AsTime()))
	return nil
}

func (s *Service) envelope(org, id, cause string) *commonv1.Envelope {
	return &commonv1.Envelope{
		EventId: id, OrgId: org, OccurredAt: timestamppb.New(s.now()), SchemaVersion: 1,
		Producer: remind.Producer, CausationId: cause,
	}
}

// zones caches loaded time zones: time.LoadLocation reads the tz database
// on every call, too slow for every fired reminder.
var zones sync.Map // name → *time.Location; only names that loaded

// location is the first time zone that loads, else UTC.
func location(names ...string) *time.Location {
	for _, z := range names {
		if z == "" {
			continue
		}
		if v, ok := zones.Load(z); ok {
			return v.(*time.Location)
		}
		if loc, err := time.LoadLocation(z); err == nil {
			zones.Store(z, loc)
			return loc
		}
	}
	return time.UTC
}

// kindOf is the activity kind's word for answers.
func kindOf(k crmv1.ActivityKind) string {
	switch k {
	case crmv1.ActivityKind_ACTIVITY_KIND_TASK:
		return "task"
	case crmv1.ActivityKind_ACTIVITY_KIND_CALL:
		return "call"
	default:
		return "meeting"
	}
}
