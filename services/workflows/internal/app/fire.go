package app

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	slackv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/slack/v1"

	"github.com/crmslack/crmslack/services/workflows/internal/action"
	"github.com/crmslack/crmslack/services/workflows/internal/compose"
)

// HandleTriggered fires every action of the rule at once: each renders its
// message and hands one post per target (and the owner's DM) to the
// egress. The post ids derive from the trigger's event id, so a trigger
// delivered again publishes the same posts, which the stream and the
// egress drop. Nothing is sent, and the history says why, when the org's
// integration is off or the action's team is no longer active.
func (s *Service) HandleTriggered(ctx context.Context, ev *crmv1.WorkflowRuleTriggered) error {
	org, trigger := ev.GetEnvelope().GetOrgId(), ev.GetEnvelope().GetEventId()
	rec := ev.GetRecord()
	switch {
	case ev.GetRuleId() == "":
		return bus.Permanent(errors.New("WorkflowRuleTriggered without a rule_id"))
	case rec == nil || rec.GetId() == "" || rec.GetModule() == "":
		return bus.Permanent(fmt.Errorf("WorkflowRuleTriggered of rule %s without a record (module and id)", ev.GetRuleId()))
	}
	if err := s.ready(); err != nil {
		return err
	}
	if sc := ev.GetSchema(); sc != nil && sc.GetModule() == rec.GetModule() {
		if err := s.noteSchema(ctx, org, sc); err != nil {
			return err
		}
	}
	actions := s.model.Rule(org, ev.GetRuleId())
	if len(actions) == 0 {
		s.cfg.Fired("none", 1)
		return nil
	}
	schema := ev.GetSchema()
	if schema.GetModule() != rec.GetModule() {
		schema, _ = s.model.Schema(org, rec.GetModule())
	}
	format := s.model.Format(org)
	now := s.now()
	var items []bus.Published
	var entries []action.Entry
	skip := func(a *action.Action, reason string) {
		entries = append(entries, action.Entry{ID: "skip:" + trigger + ":" + a.ID, Kind: action.Skipped, Org: org, ActionID: a.ID,
			RuleID: a.Spec.RuleID, TriggerEventID: trigger, RecordID: rec.GetId(), Reason: reason, At: now})
	}
	for _, a := range actions {
		switch {
		case !strings.EqualFold(a.Spec.Module, rec.GetModule()):
			skip(a, fmt.Sprintf("the action is on module %s; the rule fired for a record of %s", a.Spec.Module, rec.GetModule()))
			continue
		case !s.access.Enabled(org):
			skip(a, "the org's Slack integration is disabled")
			continue
		case !s.access.TeamActive(org, a.Spec.Team):
			skip(a, fmt.Sprintf("Slack team %s is no longer one of the org's active teams", a.Spec.Team))
			continue
		}
		msg, err := compose.Compose(compose.Input{Bound: a.Bound, Record: rec, Schema: schema, Format: format, Card: s.cfg.Card,
			AttachCard: a.Spec.AttachCard, RuleName: ev.GetRuleName()})
		if err != nil {
			skip(a, "the message could not be rendered: "+err.Error())
			continue
		}
		send := func(target string, to *slackv1.Target) {
			id := action.MessageID(trigger, a.ID, target)
			items = append(items, bus.Published{Subject: topology.SlackOut(org, a.Spec.Team, "post"), Event: &slackv1.PostMessage{
				Envelope: &commonv1.Envelope{EventId: id, OrgId: org, OccurredAt: timestamppb.New(now), SchemaVersion: 1,
					Producer: Producer, CausationId: trigger, Trace: ev.GetEnvelope().GetTrace()},
				IdempotencyKey: id, TeamId: a.Spec.Team, Target: to, Text: msg.Text, BlocksJson: msg.Blocks,
				Origin: &slackv1.Origin{Service: Producer, Purpose: "rule:" + a.Spec.RuleID, OnBehalfOf: ev.GetTriggeredBy()},
			}})
			entries = append(entries, action.Entry{ID: id, Kind: action.Sent, Org: org, ActionID: a.ID, RuleID: a.Spec.RuleID,
				TriggerEventID: trigger, RecordID: rec.GetId(), MessageID: id, Target: target, At: now})
		}
		for _, t := range a.Spec.Targets {
			if a.Spec.Kind == action.Users {
				send(t, &slackv1.Target{Kind: &slackv1.Target_SlackUserId{SlackUserId: t}})
			} else {
				send(t, &slackv1.Target{Kind: &slackv1.Target_ChannelId{ChannelId: t}})
			}
		}
		if a.Spec.NotifyOwner {
			if email := strings.TrimSpace(rec.GetOwner().GetEmail()); email != "" {
				send(action.OwnerTarget, &slackv1.Target{Kind: &slackv1.Target_Email{Email: email}})
			} else {
				skip(a, "the record's owner has no email, so no DM could be sent to them")
			}
		}
	}
	if len(items) > 0 {
		if err := s.pub.PublishBatch(ctx, items); err != nil {
			return fmt.Errorf("handing rule %s's messages to the egress: %w", ev.GetRuleId(), err)
		}
	}
	if err := s.history.Record(ctx, entries...); err != nil {
		return fmt.Errorf("recording rule %s's firing: %w", ev.GetRuleId(), err)
	}
	s.cfg.Fired("sent", len(items))
	return nil
}

// HandleRecordUpserted keeps the latest schema of each module, against
// which templates are checked when saved.
func (s *Service) HandleRecordUpserted(ctx context.Context, ev *crmv1.RecordUpserted) error {
	if err := s.ready(); err != nil {
		return err
	}
	if sc := ev.GetSchema(); sc != nil && sc.GetModule() != "" && tokenOK(sc.GetModule()) {
		return s.noteSchema(ctx, ev.GetEnvelope().GetOrgId(), sc)
	}
	return nil
}

// HandleRecordsImported keeps the schema of a batch of imported records,
// as HandleRecordUpserted does an upsert's.
func (s *Service) HandleRecordsImported(ctx context.Context, ev *crmv1.RecordsImported) error {
	if err := s.ready(); err != nil {
		return err
	}
	if sc := ev.GetSchema(); sc != nil && sc.GetModule() != "" && tokenOK(sc.GetModule()) {
		return s.noteSchema(ctx, ev.GetEnvelope().GetOrgId(), sc)
	}
	return nil
}

// noteSchema stores a module's schema when it differs from the one known.
func (s *Service) noteSchema(ctx context.Context, org string, sc *crmv1.ModuleSchema) error {
	if cur, ok := s.model.Schema(org, sc.GetModule()); ok && proto.Equal(cur, sc) {
		return nil
	}
	if err := s.store.PutSchema(ctx, org, sc); err != nil {
		return fmt.Errorf("keeping the schema of %s: %w", sc.GetModule(), err)
	}
	s.model.PutSchema(org, sc)
	return nil
}
