package app

import (
	"context"
	"errors"
	"strings"
	"testing"

	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	integrationv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/integration/v1"
	slackv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/slack/v1"
	workflowsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/workflows/v1"

	"github.com/crmslack/crmslack/services/workflows/internal/action"
)

func spec() action.Spec {
	return action.Spec{RuleID: "r1", Module: "Deals", Template: "Won #{Deals.Deal Name} for #{Deals.Amount}", Team: "T1",
		Kind: action.Channels, Targets: []string{"C1"}, NotifyOwner: true}
}

func fired(event string) *crmv1.WorkflowRuleTriggered {
	return &crmv1.WorkflowRuleTriggered{
		Envelope: &commonv1.Envelope{EventId: event, OrgId: "o1"}, RuleId: "r1", Schema: schema(),
		Record: &crmv1.Record{Module: "Deals", Id: "d1", Owner: &commonv1.CrmUserRef{Email: "owner@acme.example"},
			Fields: map[string]*crmv1.FieldValue{"Deal_Name": {Kind: &crmv1.FieldValue_Text{Text: "<!channel>"}}, "Amount": {Kind: &crmv1.FieldValue_Number{Number: 5}}}},
	}
}

func TestCreateRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		caller Caller
		edit   func(*fixture, *action.Spec)
		want   error
		detail string
	}{
		{"not an admin", Caller{User: admin.User}, nil, action.ErrDenied, "administrator"},
		{"no schema seen", admin, func(_ *fixture, s *action.Spec) { s.Module = "Leads" }, action.ErrPrecondition, "no field metadata"},
		{"unknown field", admin, func(_ *fixture, s *action.Spec) { s.Template = "#{Deals.Amnt}" }, action.ErrInvalid, "#{Deals.Amount}"},
		{"integration off", admin, func(f *fixture, _ *action.Spec) { f.access.enabled = false }, action.ErrPrecondition, "disabled"},
		{"team not active", admin, func(f *fixture, _ *action.Spec) { f.access.teams = nil }, action.ErrPrecondition, "active teams"},
		{"caller not in the team", admin, func(f *fixture, _ *action.Spec) { f.teams.member = nil }, action.ErrDenied, "not a member"},
		{"target outside the team", admin, func(_ *fixture, s *action.Spec) { s.Targets = []string{"C9"} }, action.ErrInvalid, "C9"},
		{"no targets", admin, func(_ *fixture, s *action.Spec) { s.Targets, s.NotifyOwner = nil, false }, action.ErrInvalid, "targets"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			sp := spec()
			if tc.edit != nil {
				tc.edit(f, &sp)
			}
			_, err := f.svc.Create(ctx, "o1", tc.caller, sp)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.detail) {
				t.Errorf("Create = %v, want %v with %q", err, tc.want, tc.detail)
			}
		})
	}
}

func TestFiringPostsOncePerTargetAndTrigger(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	a, err := f.svc.Create(ctx, "o1", admin, spec())
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // a redelivery
		if err := f.svc.HandleTriggered(ctx, fired("e1")); err != nil {
			t.Fatal(err)
		}
	}
	if len(f.pub.items) != 4 {
		t.Fatalf("%d commands, want 2 per delivery (channel, owner)", len(f.pub.items))
	}
	first, again := f.pub.items[0].Event.(*slackv1.PostMessage), f.pub.items[2].Event.(*slackv1.PostMessage)
	if first.GetIdempotencyKey() != again.GetIdempotencyKey() || first.GetEnvelope().GetEventId() != first.GetIdempotencyKey() {
		t.Errorf("a redelivered trigger gets other ids: %s, %s", first.GetIdempotencyKey(), again.GetIdempotencyKey())
	}
	if got, _, _ := action.ParseMessageID(first.GetIdempotencyKey()); got != a.ID {
		t.Errorf("the id names action %q", got)
	}
	if want := "Won &lt;!channel&gt; for €5.00"; first.GetText() != want {
		t.Errorf("text %q, want %q", first.GetText(), want)
	}
	if owner := f.pub.items[1].Event.(*slackv1.PostMessage); owner.GetTarget().GetEmail() != "owner@acme.example" {
		t.Errorf("owner DM to %v", owner.GetTarget())
	}
	if f.pub.items[0].Subject != "slack.out.v1.o1.T1.post" {
		t.Errorf("subject %s", f.pub.items[0].Subject)
	}
	if err := f.svc.HandleTriggered(ctx, fired("e2")); err != nil {
		t.Fatal(err)
	}
	if k := f.pub.items[4].Event.(*slackv1.PostMessage).GetIdempotencyKey(); k == first.GetIdempotencyKey() {
		t.Error("another trigger reuses the first one's id")
	}
}

func TestFiringSkipsVisibly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		edit   func(*fixture)
		reason string
	}{
		{"integration disabled", func(f *fixture) { f.access.enabled = false }, "disabled"},
		{"team removed", func(f *fixture) { f.access.teams = nil }, "no longer one of the org's active teams"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			if _, err := f.svc.Create(ctx, "o1", admin, spec()); err != nil {
				t.Fatal(err)
			}
			tc.edit(f)
			if err := f.svc.HandleTriggered(ctx, fired("e1")); err != nil {
				t.Fatal(err)
			}
			if len(f.pub.items) != 0 {
				t.Errorf("%d commands sent", len(f.pub.items))
			}
			if len(f.history.entries) != 1 || f.history.entries[0].Kind != action.Skipped || !strings.Contains(f.history.entries[0].Reason, tc.reason) {
				t.Errorf("history %+v", f.history.entries)
			}
		})
	}
}

func TestTeamRemovedDeletesAfterSayingSo(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	a, err := f.svc.Create(ctx, "o1", admin, spec())
	if err != nil {
		t.Fatal(err)
	}
	ev := &integrationv1.TeamRemoved{Envelope: &commonv1.Envelope{EventId: "rm1", OrgId: "o1"}, TeamId: "T1", Reason: integrationv1.TeamRemovedReason_TEAM_REMOVED_REASON_ADMIN}
	if err := f.svc.HandleTeamRemoved(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if len(f.store.deleted) != 1 || f.store.deleted[0] != a.ID {
		t.Errorf("deleted %v", f.store.deleted)
	}
	if _, ok := f.model.Action("o1", a.ID); ok {
		t.Error("the action is still in the read model")
	}
	removed, ok := f.pub.items[0].Event.(*workflowsv1.WorkflowActionsRemoved)
	if !ok || removed.GetRules()[0].GetRuleId() != "r1" || removed.GetRules()[0].GetActionIds()[0] != a.ID || f.pub.items[0].Subject != "integration.v1.o1.workflow.actions_removed" {
		t.Errorf("event %v on %s", f.pub.items[0].Event, f.pub.items[0].Subject)
	}
	if len(f.history.entries) != 1 || f.history.entries[0].Kind != action.Removed {
		t.Errorf("history %+v", f.history.entries)
	}
	if err := f.svc.HandleTeamRemoved(ctx, ev); err != nil || len(f.pub.items) != 1 {
		t.Errorf("a redelivery did more: %v, %d events", err, len(f.pub.items))
	}
}

func TestGoneTargetIsFlaggedOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	a, err := f.svc.Create(ctx, "o1", admin, spec())
	if err != nil {
		t.Fatal(err)
	}
	id := action.MessageID("e1", a.ID, "C1")
	failed := func(event, origin string) *integrationv1.DeliveryFailed {
		return &integrationv1.DeliveryFailed{Envelope: &commonv1.Envelope{EventId: event, OrgId: "o1"}, CommandId: id, Origin: origin,
			Code: integrationv1.DeliveryFailureCode_DELIVERY_FAILURE_CODE_SLACK_ERROR, Reason: "slack: is_archived"}
	}
	if err := f.svc.HandleDeliveryFailed(ctx, failed("f0", "sharing/share_record")); err != nil || len(f.history.entries) != 0 {
		t.Fatalf("another service's outcome was recorded: %v", err)
	}
	for _, ev := range []string{"f1", "f2"} {
		if err := f.svc.HandleDeliveryFailed(ctx, failed(ev, "workflows/rule:r1")); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := f.model.Action("o1", a.ID)
	if len(got.Flags) != 1 || got.Flags[0].Target != "C1" {
		t.Errorf("flags %+v", got.Flags)
	}
	if len(f.pub.items) != 1 {
		t.Errorf("%d WorkflowTargetsFlagged events, want 1", len(f.pub.items))
	}
	if len(f.history.entries) != 2 || f.history.entries[0].Kind != action.Failed {
		t.Errorf("history %+v", f.history.entries)
	}
}

func TestNothingIsAckedBeforeTheActionsAreLoaded(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.model = nil
	svc := New(Config{}, f.access, f.teams, readmodelNotSynced(), f.store, f.pub, f.history, f.svc.log)
	err := svc.HandleTriggered(context.Background(), fired("e1"))
	if !errors.Is(err, action.ErrUnavailable) {
		t.Errorf("a trigger before the actions are loaded: %v, want a temporary error (retried)", err)
	}
}

// TestSchemaIsTheOneTemplatesAreBoundAgainst: what GetModuleSchema serves
// (the console's "#" completion) is the schema Create checks against.
func TestSchemaIsTheOneTemplatesAreBoundAgainst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	for _, tc := range []struct {
		name, org, module string
		want              error
	}{
		{"seen", "o1", "Deals", nil},
		{"never seen", "o1", "Leads", action.ErrNotFound},
		{"another org's", "o2", "Deals", action.ErrNotFound},
		{"no module", "o1", " ", action.ErrInvalid},
	} {
		sc, err := f.svc.Schema(ctx, tc.org, tc.module)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: Schema = %v, want %v", tc.name, err, tc.want)
			continue
		}
		if tc.want == nil && sc.GetModule() != "Deals" {
			t.Errorf("%s: Schema = %v, want the Deals schema", tc.name, sc)
		}
	}
}
