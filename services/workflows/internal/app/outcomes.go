package app

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/bus"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	integrationv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/integration/v1"
	workflowsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/workflows/v1"

	"github.com/crmslack/crmslack/libs/topology"
	"github.com/crmslack/crmslack/services/workflows/internal/action"
)

// mine returns the action and target of a delivery outcome of a message
// this service sent; other services' outcomes are not.
func mine(origin, commandID string) (actionID, target string, ok bool) {
	if origin != Producer && !strings.HasPrefix(origin, Producer+"/") {
		return "", "", false
	}
	return action.ParseMessageID(commandID)
}

// HandleDeliverySucceeded records that a message was posted, with its
// permalink.
func (s *Service) HandleDeliverySucceeded(ctx context.Context, ev *integrationv1.DeliverySucceeded) error {
	id, target, ok := mine(ev.GetOrigin(), ev.GetCommandId())
	if !ok {
		return nil
	}
	return s.history.Record(ctx, action.Entry{ID: "out:" + ev.GetEnvelope().GetEventId(), Kind: action.Posted, Org: ev.GetEnvelope().GetOrgId(),
		ActionID: id, MessageID: ev.GetCommandId(), Target: target, Permalink: ev.GetPermalink(), At: s.now()})
}

// HandleDeliveryFailed records that a message could not be posted. A
// target Slack says is gone (a channel archived or deleted, a user
// deactivated) is flagged on the action and reported with a
// WorkflowTargetsFlagged event.
func (s *Service) HandleDeliveryFailed(ctx context.Context, ev *integrationv1.DeliveryFailed) error {
	id, target, ok := mine(ev.GetOrigin(), ev.GetCommandId())
	if !ok {
		return nil
	}
	org := ev.GetEnvelope().GetOrgId()
	reason := ev.GetReason()
	if reason == "" {
		reason = strings.ToLower(strings.TrimPrefix(ev.GetCode().String(), "DELIVERY_FAILURE_CODE_"))
	}
	if err := s.history.Record(ctx, action.Entry{ID: "out:" + ev.GetEnvelope().GetEventId(), Kind: action.Failed, Org: org,
		ActionID: id, MessageID: ev.GetCommandId(), Target: target, Reason: reason, At: s.now()}); err != nil {
		return err
	}
	if !gone(ev) || target == action.OwnerTarget {
		return nil
	}
	if err := s.ready(); err != nil {
		return err
	}
	return s.flag(ctx, org, id, target, reason, ev.GetEnvelope().GetEventId())
}

// gone reports a failure that means the target no longer exists.
func gone(ev *integrationv1.DeliveryFailed) bool {
	switch ev.GetCode() {
	case integrationv1.DeliveryFailureCode_DELIVERY_FAILURE_CODE_TARGET_NOT_FOUND,
		integrationv1.DeliveryFailureCode_DELIVERY_FAILURE_CODE_TARGET_OUTSIDE_TEAM:
		return true
	}
	r := ev.GetReason()
	return strings.Contains(r, "is_archived") || strings.Contains(r, "user_disabled") || strings.Contains(r, "cannot_dm_bot")
}

func (s *Service) flag(ctx context.Context, org, id, target, reason, failure string) error {
	a, ok := s.model.Action(org, id)
	if !ok || a.Flagged(target) {
		return nil // deleted since, or already flagged
	}
	f := action.Flag{Target: target, Reason: reason, TriggerEventID: failure, At: s.now()}
	upd := *a
	upd.Flags = append(append([]action.Flag(nil), a.Flags...), f)
	rev, err := s.store.UpdateAction(ctx, &upd, a.Revision)
	if err != nil {
		return fmt.Errorf("flagging target %s of action %s: %w", target, id, err) // a conflict retries on the new revision
	}
	upd.Revision = rev
	s.model.Put(&upd)
	s.log.WarnContext(ctx, "workflow action target flagged: Slack says it no longer exists", "org", org, "action", id, "rule", a.Spec.RuleID, "target", target, "reason", reason)
	ev := &workflowsv1.WorkflowTargetsFlagged{
		Envelope: s.envelope(org, "wf-flag:"+id+":"+target+":"+failure, failure),
		ActionId: id, RuleId: a.Spec.RuleID, TeamId: a.Spec.Team,
		Targets: []*workflowsv1.FlaggedTarget{{Target: target, Reason: reason, FlaggedAt: timestamppb.New(f.At), TriggerEventId: failure}},
	}
	return s.pubOne(ctx, topology.WorkflowTargetsFlagged(org), ev)
}

func (s *Service) envelope(org, id, causation string) *commonv1.Envelope {
	return &commonv1.Envelope{EventId: id, OrgId: org, OccurredAt: timestamppb.New(s.cfg.Now()), SchemaVersion: 1, Producer: Producer, CausationId: causation}
}

func (s *Service) pubOne(ctx context.Context, subject string, ev bus.Event) error {
	if err := s.pub.PublishBatch(ctx, []bus.Published{{Subject: subject, Event: ev}}); err != nil {
		return fmt.Errorf("publishing on %s: %w", subject, err)
	}
	return nil
}
