package app

import (
	"context"
	"fmt"
	"slices"
	"strings"

	integrationv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/integration/v1"
	workflowsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/workflows/v1"

	"github.com/crmslack/crmslack/libs/topology"
	"github.com/crmslack/crmslack/services/workflows/internal/action"
)

// HandleTeamRemoved deletes the team's actions, as the seed says: a
// removed team's instant actions are removed from their rules. The
// history of each says so, and a WorkflowActionsRemoved event tells the
// CRM which rules lost actions. Both are written before the deletes, so a
// redelivery after a crash finds the same actions and repeats the same
// (deduplicated) writes.
func (s *Service) HandleTeamRemoved(ctx context.Context, ev *integrationv1.TeamRemoved) error {
	org, team, eid := ev.GetEnvelope().GetOrgId(), ev.GetTeamId(), ev.GetEnvelope().GetEventId()
	if err := s.ready(); err != nil {
		return err
	}
	var gone []*action.Action
	for _, a := range s.model.Org(org) {
		if a.Spec.Team == team {
			gone = append(gone, a)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	reason := "Slack team " + team + " was removed from the org (" + strings.ToLower(strings.TrimPrefix(ev.GetReason().String(), "TEAM_REMOVED_REASON_")) + ")"
	now := s.now()
	byRule := map[string]*workflowsv1.RemovedRule{}
	var rules []*workflowsv1.RemovedRule
	entries := make([]action.Entry, 0, len(gone))
	for _, a := range gone {
		r, ok := byRule[a.Spec.RuleID]
		if !ok {
			r = &workflowsv1.RemovedRule{RuleId: a.Spec.RuleID, Module: a.Spec.Module}
			byRule[a.Spec.RuleID] = r
			rules = append(rules, r)
		}
		r.ActionIds = append(r.ActionIds, a.ID)
		entries = append(entries, action.Entry{ID: "removed:" + eid + ":" + a.ID, Kind: action.Removed, Org: org, ActionID: a.ID,
			RuleID: a.Spec.RuleID, TriggerEventID: eid, Reason: reason, At: now})
	}
	slices.SortFunc(rules, func(a, b *workflowsv1.RemovedRule) int { return strings.Compare(a.RuleId, b.RuleId) })
	if err := s.history.Record(ctx, entries...); err != nil {
		return err
	}
	out := &workflowsv1.WorkflowActionsRemoved{Envelope: s.envelope(org, "wf-removed:"+eid, eid), TeamId: team, Reason: ev.GetReason(), Rules: rules}
	if err := s.pubOne(ctx, topology.WorkflowActionsRemoved(org), out); err != nil {
		return err
	}
	for _, a := range gone {
		if err := s.store.DeleteAction(ctx, org, a.ID); err != nil {
			return fmt.Errorf("deleting action %s of removed team %s: %w", a.ID, team, err)
		}
		s.model.Delete(org, a.ID, a.Revision)
	}
	s.log.InfoContext(ctx, "workflow actions of a removed team deleted", "org", org, "team", team, "actions", len(gone), "rules", len(rules))
	return nil
}
