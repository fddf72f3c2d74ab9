// Package pbconv converts between the workflows domain and its protobuf
// contracts (workflows.v1), for the gRPC edge and the store alike.
package pbconv

import (
	"fmt"

	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	workflowsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/workflows/v1"

	"github.com/crmslack/crmslack/services/workflows/internal/action"
	"github.com/crmslack/crmslack/services/workflows/internal/template"
)

// Kind converts a target kind; "" for unspecified.
func Kind(k workflowsv1.TargetKind) action.TargetKind {
	switch k {
	case workflowsv1.TargetKind_TARGET_KIND_USERS:
		return action.Users
	case workflowsv1.TargetKind_TARGET_KIND_CHANNELS:
		return action.Channels
	}
	return ""
}

func kindPB(k action.TargetKind) workflowsv1.TargetKind {
	switch k {
	case action.Users:
		return workflowsv1.TargetKind_TARGET_KIND_USERS
	case action.Channels:
		return workflowsv1.TargetKind_TARGET_KIND_CHANNELS
	}
	return workflowsv1.TargetKind_TARGET_KIND_UNSPECIFIED
}

// Spec converts an action spec from its message.
func Spec(s *workflowsv1.ActionSpec) action.Spec {
	return action.Spec{
		RuleID: s.GetRuleId(), Module: s.GetModule(), Template: s.GetTemplate(), Team: s.GetTeamId(),
		Kind: Kind(s.GetTargetKind()), Targets: append([]string(nil), s.GetTargets()...),
		AttachCard: s.GetAttachCard(), NotifyOwner: s.GetNotifyOwner(),
	}
}

// Person converts a CRM user reference.
func Person(u *commonv1.CrmUserRef) action.Person {
	return action.Person{ID: u.GetId(), Name: u.GetName(), Email: u.GetEmail()}
}

// Action converts an action to its message.
func Action(a *action.Action) *workflowsv1.Action {
	out := &workflowsv1.Action{
		ActionId: a.ID, OrgId: a.Org,
		Spec: &workflowsv1.ActionSpec{RuleId: a.Spec.RuleID, Module: a.Spec.Module, Template: a.Spec.Template, TeamId: a.Spec.Team,
			TargetKind: kindPB(a.Spec.Kind), Targets: a.Spec.Targets, AttachCard: a.Spec.AttachCard, NotifyOwner: a.Spec.NotifyOwner},
		CreatedAt: timestamppb.New(a.CreatedAt), UpdatedAt: timestamppb.New(a.UpdatedAt),
		UpdatedBy: &commonv1.CrmUserRef{Id: a.UpdatedBy.ID, Name: a.UpdatedBy.Name, Email: a.UpdatedBy.Email},
		Revision:  a.Revision, CanonicalTemplate: a.Canonical,
	}
	for _, f := range a.Flags {
		out.FlaggedTargets = append(out.FlaggedTargets, &workflowsv1.FlaggedTarget{Target: f.Target, Reason: f.Reason,
			FlaggedAt: timestamppb.New(f.At), TriggerEventId: f.TriggerEventID})
	}
	return out
}

// FromAction converts a stored action back, its canonical template bound
// again; rev is the store's revision.
func FromAction(m *workflowsv1.Action, rev uint64) (*action.Action, error) {
	b, err := template.Rebind(m.GetCanonicalTemplate(), m.GetSpec().GetModule())
	if err != nil {
		return nil, fmt.Errorf("action %s: stored template: %w", m.GetActionId(), err)
	}
	a := &action.Action{
		ID: m.GetActionId(), Org: m.GetOrgId(), Spec: Spec(m.GetSpec()), Canonical: m.GetCanonicalTemplate(), Bound: b,
		CreatedAt: m.GetCreatedAt().AsTime(), UpdatedAt: m.GetUpdatedAt().AsTime(), UpdatedBy: Person(m.GetUpdatedBy()), Revision: rev,
	}
	for _, f := range m.GetFlaggedTargets() {
		a.Flags = append(a.Flags, action.Flag{Target: f.GetTarget(), Reason: f.GetReason(), At: f.GetFlaggedAt().AsTime(), TriggerEventID: f.GetTriggerEventId()})
	}
	return a, nil
}

// Execution converts a folded execution.
func Execution(e action.Execution) *workflowsv1.Execution {
	out := &workflowsv1.Execution{ActionId: e.ActionID, RuleId: e.RuleID, TriggerEventId: e.TriggerEventID, RecordId: e.RecordID,
		At: timestamppb.New(e.At), Outcome: Outcome(e.Outcome), Reason: e.Reason}
	for _, m := range e.Messages {
		out.Messages = append(out.Messages, &workflowsv1.MessageResult{Target: m.Target, Outcome: Outcome(m.Outcome), Permalink: m.Permalink,
			Reason: m.Reason, At: timestamppb.New(m.At), MessageId: m.ID})
	}
	return out
}

// Outcome converts an entry kind.
func Outcome(k action.EntryKind) workflowsv1.Outcome {
	switch k {
	case action.Sent:
		return workflowsv1.Outcome_OUTCOME_SENT
	case action.Posted:
		return workflowsv1.Outcome_OUTCOME_POSTED
	case action.Failed:
		return workflowsv1.Outcome_OUTCOME_FAILED
	case action.Skipped:
		return workflowsv1.Outcome_OUTCOME_SKIPPED
	case action.Removed:
		return workflowsv1.Outcome_OUTCOME_REMOVED
	}
	return workflowsv1.Outcome_OUTCOME_UNSPECIFIED
}
