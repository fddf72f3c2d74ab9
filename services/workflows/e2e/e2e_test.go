// Package e2e runs workflows end to end, in-process, with the services it
// works with (team registry, delivery) on embedded NATS and FerretDB and
// the Slack stand-in as Slack: what a firing posts is read back from the
// stand-in, not from the bus.
package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/slackstandin"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/testkit/harness"
	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	integrationv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/integration/v1"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"
	workflowsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/workflows/v1"
)

const dealWon = "*Deal won* :tada: #{Deals.Deal Name} for #{Deals.Amount}, closing #{Deals.Closing Date} " +
	"(#{Deals.Probability (%)}, #{Deals.Tags}, #{Deals.Account Name}; stage #{Deals.Stage}, owner #{Owner.Full Name}). " +
	"Next: #{Deals.next  step}. #{Record.Link} \\#{not a tag}"

func create(t *testing.T, s *stack, spec *workflowsv1.ActionSpec) *workflowsv1.Action {
	t.Helper()
	return createAs(t, s, admin, spec)
}

func createAs(t *testing.T, s *stack, by *teamsv1.Caller, spec *workflowsv1.ActionSpec) *workflowsv1.Action {
	t.Helper()
	resp, err := s.workflows.CreateAction(testkit.Context(t), &workflowsv1.CreateActionRequest{OrgId: org, Caller: by, Spec: spec})
	if err != nil {
		t.Fatalf("creating %v: %v", spec, err)
	}
	return resp.GetAction()
}

func waitMessages(t *testing.T, s *stack, n int, f slackstandin.MessageFilter) []slackstandin.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(testkit.Context(t), 30*time.Second)
	defer cancel()
	ms, err := s.standin.WaitForMessages(ctx, n, f)
	if err != nil {
		t.Fatalf("waiting for %d messages %+v: %v (have %d)", n, f, err, len(s.standin.Messages(f)))
	}
	return ms
}

// history waits until the action's history satisfies ok.
func history(t *testing.T, s *stack, actionID string, ok func([]*workflowsv1.Execution) bool, what string) []*workflowsv1.Execution {
	t.Helper()
	var xs []*workflowsv1.Execution
	testkit.Eventually(t, 30*time.Second, func() bool {
		resp, err := s.workflows.ListHistory(testkit.Context(t), &workflowsv1.ListHistoryRequest{OrgId: org, ActionId: actionID})
		if err != nil {
			return false
		}
		xs = resp.GetExecutions()
		return ok(xs)
	}, what)
	return xs
}

// TestWorkflows walks the "done when" in order, on one stack.
func TestWorkflows(t *testing.T) {
	s := startStack(t, options{})
	s.seedSchema(t)
	ctx := testkit.Context(t)

	channelAction := create(t, s, &workflowsv1.ActionSpec{RuleId: "deal-won", Module: "Deals", Template: dealWon, TeamId: acme,
		TargetKind: workflowsv1.TargetKind_TARGET_KIND_CHANNELS, Targets: []string{acmeSales}, AttachCard: true})
	userAction := create(t, s, &workflowsv1.ActionSpec{RuleId: "deal-won", Module: "Deals", Template: "Congrats on #{Deals.Deal_Name}, #{Owner.Email}!",
		TeamId: acme, TargetKind: workflowsv1.TargetKind_TARGET_KIND_USERS, Targets: []string{bob}, NotifyOwner: true})

	t.Run("a deal-won rule fires: both messages arrive, formatted, once each even when the trigger comes twice", func(t *testing.T) {
		ev := trigger("trig-1", "deal-won", deal("d-1001", "Zylker Q4 licences"))
		s.publish(t, ev)
		s.publish(t, ev) // the CRM retried: the same event id
		// A redelivery past the stream's duplicate window: the same event
		// under another message id reaches the consumer a second time.
		harness.Republish(t, s.js, topology.WorkflowTriggered(org), ev, "redelivered-trig-1")

		ch := waitMessages(t, s, 1, slackstandin.MessageFilter{Team: acme, Channel: acmeSales, Kind: slackstandin.KindMessage})[0]
		want := "*Deal won* :tada: Zylker Q4 licences for €125,000.00, closing Dec 15, 2026 (90%, Enterprise, Renewal, Zylker Corp; stage Closed Won, owner Alice Johnson). " +
			"Next: —. <" + crmBaseURL + "/Deals/d-1001|Open in CRM> #{not a tag}"
		if ch.Text != want {
			t.Errorf("channel message\n got %q\nwant %q", ch.Text, want)
		}
		if !strings.Contains(string(ch.Blocks), `"header"`) || !strings.Contains(string(ch.Blocks), "Zylker Corp") {
			t.Errorf("the channel message has no record card: %s", ch.Blocks)
		}
		dm := waitMessages(t, s, 1, slackstandin.MessageFilter{Team: acme, User: bob, Kind: slackstandin.KindMessage})[0]
		if want := "Congrats on Zylker Q4 licences, " + aliceEmail + "!"; dm.Text != want {
			t.Errorf("bob's DM %q, want %q", dm.Text, want)
		}
		owner := waitMessages(t, s, 1, slackstandin.MessageFilter{Team: acme, User: alice, Kind: slackstandin.KindMessage})[0]
		if !strings.HasPrefix(owner.Text, "Congrats on Zylker") {
			t.Errorf("the owner's DM %q", owner.Text)
		}

		s.triggersDone(t)
		if n := s.countOut(t); n != 3 {
			t.Errorf("SLACK_OUT holds %d commands, want 3 (channel, bob, owner): a second delivery sent again", n)
		}
		history(t, s, channelAction.GetActionId(), func(xs []*workflowsv1.Execution) bool {
			return len(xs) == 1 && xs[0].GetOutcome() == workflowsv1.Outcome_OUTCOME_POSTED && xs[0].GetMessages()[0].GetPermalink() != ""
		}, "the channel action's history shows one posted execution with its permalink")
		for _, f := range []slackstandin.MessageFilter{{Team: acme, Channel: acmeSales}, {Team: acme, User: bob}, {Team: acme, User: alice}} {
			if n := len(s.standin.Messages(f)); n != 1 {
				t.Errorf("%+v: %d messages, want 1", f, n)
			}
		}
	})

	t.Run("a template with an unknown field cannot be saved and the error names the closest field", func(t *testing.T) {
		_, err := s.workflows.CreateAction(ctx, &workflowsv1.CreateActionRequest{OrgId: org, Caller: admin, Spec: &workflowsv1.ActionSpec{
			RuleId: "deal-won", Module: "Deals", Template: "Won #{Deals.Amout}", TeamId: acme,
			TargetKind: workflowsv1.TargetKind_TARGET_KIND_CHANNELS, Targets: []string{acmeSales}}})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "did you mean #{Deals.Amount}") {
			t.Errorf("unknown field: %v", err)
		}
		_, err = s.workflows.CreateAction(ctx, &workflowsv1.CreateActionRequest{OrgId: org, Caller: admin, Spec: &workflowsv1.ActionSpec{
			RuleId: "deal-won", Module: "Deals", Template: strings.Repeat("x", 3001), TeamId: acme,
			TargetKind: workflowsv1.TargetKind_TARGET_KIND_CHANNELS, Targets: []string{acmeSales}}})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "3000") {
			t.Errorf("a template that cannot fit: %v", err)
		}
		notAdmin := proto.Clone(admin).(*teamsv1.Caller)
		notAdmin.IsAdmin = false
		_, err = s.workflows.CreateAction(ctx, &workflowsv1.CreateActionRequest{OrgId: org, Caller: notAdmin, Spec: &workflowsv1.ActionSpec{
			RuleId: "deal-won", Module: "Deals", Template: "x", TeamId: acme,
			TargetKind: workflowsv1.TargetKind_TARGET_KIND_CHANNELS, Targets: []string{acmeSales}}})
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("a non-admin: %v", err)
		}
		_, err = s.workflows.CreateAction(ctx, &workflowsv1.CreateActionRequest{OrgId: org, Caller: admin, Spec: &workflowsv1.ActionSpec{
			RuleId: "deal-won", Module: "Deals", Template: "x", TeamId: acme,
			TargetKind: workflowsv1.TargetKind_TARGET_KIND_CHANNELS, Targets: []string{"C0GLBXDEAL"}}})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "C0GLBXDEAL") {
			t.Errorf("a channel of another team: %v", err)
		}
	})

	t.Run("a value containing <!channel> arrives escaped", func(t *testing.T) {
		s.publish(t, trigger("trig-2", "deal-won", deal("d-1002", "<!channel> *now* & <@U0ACME0BOB>")))
		ms := waitMessages(t, s, 2, slackstandin.MessageFilter{Team: acme, Channel: acmeSales, Kind: slackstandin.KindMessage})
		got := ms[1].Text
		if !strings.Contains(got, "&lt;!channel&gt; ∗now∗ &amp; &lt;@U0ACME0BOB&gt; for") || strings.Contains(got, "<!channel>") {
			t.Errorf("escaped value: %q", got)
		}
	})

	t.Run("a DeliveryFailed is recorded in the action's history", func(t *testing.T) {
		// The record's owner has no Slack account: delivery cannot find
		// them by email and reports the DM as failed.
		rec := deal("d-1005", "Orphan deal")
		rec.Owner.Email = "nobody@elsewhere.example"
		s.publish(t, trigger("trig-orphan", "deal-won", rec))
		xs := history(t, s, userAction.GetActionId(), func(xs []*workflowsv1.Execution) bool {
			for _, x := range xs {
				if x.GetTriggerEventId() != "trig-orphan" || x.GetOutcome() != workflowsv1.Outcome_OUTCOME_FAILED {
					continue
				}
				for _, m := range x.GetMessages() {
					if m.GetOutcome() == workflowsv1.Outcome_OUTCOME_SENT {
						return false // the egress has not answered for every message yet
					}
				}
				return true
			}
			return false
		}, "the firing with the unknown owner shows as failed, every message answered")
		for _, x := range xs {
			if x.GetTriggerEventId() != "trig-orphan" {
				continue
			}
			for _, m := range x.GetMessages() {
				switch m.GetTarget() {
				case bob:
					if m.GetOutcome() != workflowsv1.Outcome_OUTCOME_POSTED || m.GetPermalink() == "" {
						t.Errorf("bob's DM: %v", m)
					}
				case "owner":
					if m.GetOutcome() != workflowsv1.Outcome_OUTCOME_FAILED || m.GetReason() == "" {
						t.Errorf("the owner's DM: %v", m)
					}
				}
			}
		}
	})

	t.Run("a target Slack says is gone is flagged and reported", func(t *testing.T) {
		// The egress reports the channel was not found (archived since).
		id := "wf:" + channelAction.GetActionId() + ":" + acmeSales + ":" + strings.Repeat("0", 32)
		s.publish(t, &integrationv1.DeliveryFailed{Envelope: harness.Envelope(org, ""), CommandId: id, IdempotencyKey: id, TeamId: acme,
			Code: integrationv1.DeliveryFailureCode_DELIVERY_FAILURE_CODE_TARGET_NOT_FOUND, Reason: "channel_not_found", Origin: "workflows/rule:deal-won"})
		testkit.Eventually(t, 20*time.Second, func() bool {
			a, err := s.workflows.GetAction(ctx, &workflowsv1.GetActionRequest{OrgId: org, ActionId: channelAction.GetActionId()})
			return err == nil && len(a.GetAction().GetFlaggedTargets()) == 1 && a.GetAction().GetFlaggedTargets()[0].GetTarget() == acmeSales
		}, "the channel is flagged on the action")
		msg, err := lastOn(s, topology.WorkflowTargetsFlagged(org))
		if err != nil {
			t.Fatalf("no WorkflowTargetsFlagged: %v", err)
		}
		var ev workflowsv1.WorkflowTargetsFlagged
		if err := proto.Unmarshal(msg, &ev); err != nil || ev.GetActionId() != channelAction.GetActionId() {
			t.Errorf("WorkflowTargetsFlagged: %v %v", &ev, err)
		}
	})

	t.Run("with the integration disabled nothing posts", func(t *testing.T) {
		if _, err := s.registry.DisableIntegration(ctx, &teamsv1.DisableIntegrationRequest{OrgId: org, Caller: admin}); err != nil {
			t.Fatal(err)
		}
		before := s.countOut(t)
		testkit.Eventually(t, 20*time.Second, func() bool {
			s.publish(t, trigger("", "deal-won", deal("d-1003", "Disabled")))
			xs := history(t, s, userAction.GetActionId(), func([]*workflowsv1.Execution) bool { return true }, "history")
			return len(xs) > 0 && xs[0].GetOutcome() == workflowsv1.Outcome_OUTCOME_SKIPPED && strings.Contains(xs[0].GetReason(), "disabled")
		}, "a firing is skipped because the integration is disabled")
		s.triggersDone(t)
		if after := s.countOut(t); after != before {
			t.Errorf("%d commands sent with the integration disabled", after-before)
		}
		if _, err := s.registry.EnableIntegration(ctx, &teamsv1.EnableIntegrationRequest{OrgId: org, Caller: admin}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("removing the team deletes its actions and a later trigger posts nothing", func(t *testing.T) {
		// Hank, another admin of the org, is in Globex.
		hank := &teamsv1.Caller{User: &commonv1.CrmUserRef{Id: "crm-hank", Name: "Hank Scorpio", Email: "hank@globex.example"}, IsAdmin: true}
		var other *workflowsv1.Action
		testkit.Eventually(t, 20*time.Second, func() bool { // once workflows sees the integration on again
			resp, err := s.workflows.CreateAction(ctx, &workflowsv1.CreateActionRequest{OrgId: org, Caller: hank, Spec: &workflowsv1.ActionSpec{
				RuleId: "deal-lost", Module: "Deals", Template: "Lost #{Deals.Deal Name}", TeamId: globex,
				TargetKind: workflowsv1.TargetKind_TARGET_KIND_CHANNELS, Targets: []string{"C0GLBXDEAL"}}})
			other = resp.GetAction()
			return err == nil
		}, "an action of the other team is saved")
		if _, err := s.registry.RemoveTeam(ctx, &teamsv1.RemoveTeamRequest{OrgId: org, TeamId: acme, Caller: admin}); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 20*time.Second, func() bool {
			resp, err := s.workflows.ListActions(ctx, &workflowsv1.ListActionsRequest{OrgId: org})
			return err == nil && len(resp.GetActions()) == 1 && resp.GetActions()[0].GetActionId() == other.GetActionId()
		}, "only the other team's action is left")
		history(t, s, userAction.GetActionId(), func(xs []*workflowsv1.Execution) bool {
			return len(xs) > 0 && xs[0].GetOutcome() == workflowsv1.Outcome_OUTCOME_REMOVED && strings.Contains(xs[0].GetReason(), acme)
		}, "the history says the action was removed with its team")
		msg, err := lastOn(s, topology.WorkflowActionsRemoved(org))
		if err != nil {
			t.Fatalf("no WorkflowActionsRemoved: %v", err)
		}
		var ev workflowsv1.WorkflowActionsRemoved
		if err := proto.Unmarshal(msg, &ev); err != nil || ev.GetTeamId() != acme || len(ev.GetRules()) != 1 ||
			ev.GetRules()[0].GetRuleId() != "deal-won" || len(ev.GetRules()[0].GetActionIds()) != 2 {
			t.Errorf("WorkflowActionsRemoved: %v %v", &ev, err)
		}
		before, posted := s.countOut(t), len(s.standin.Messages(slackstandin.MessageFilter{Team: acme}))
		s.publish(t, trigger("trig-after-removal", "deal-won", deal("d-1004", "After removal")))
		s.triggersDone(t)
		if after := s.countOut(t); after != before {
			t.Errorf("%d commands sent after the team was removed", after-before)
		}
		if n := len(s.standin.Messages(slackstandin.MessageFilter{Team: acme})); n != posted {
			t.Errorf("%d messages posted after the team was removed", n-posted)
		}
	})
}

// lastOn returns the payload of the last event on an integration subject.
func lastOn(s *stack, subject string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		st, err := s.js.Stream(ctx, topology.StreamIntegration)
		if err == nil {
			var m *jetstream.RawStreamMsg
			if m, err = st.GetLastMsgForSubject(ctx, subject); err == nil {
				return m.Data, nil
			}
		}
		last = err
		time.Sleep(testkit.Tick)
	}
	return nil, last
}

// TestAReplicaLoadsTheActions starts a second replica after an action was
// saved: it loads the action from the bucket at start (as a restarted
// replica does), sees later changes, and either replica may fire a rule
// with the same result, once.
func TestAReplicaLoadsTheActions(t *testing.T) {
	s := startStack(t, options{})
	s.seedSchema(t)
	ctx := testkit.Context(t)
	a := create(t, s, &workflowsv1.ActionSpec{RuleId: "deal-won", Module: "Deals", Template: "Won #{Deals.Deal Name}", TeamId: acme,
		TargetKind: workflowsv1.TargetKind_TARGET_KIND_CHANNELS, Targets: []string{acmeSales}})
	second := s.startWorkflows()
	testkit.Eventually(t, 20*time.Second, func() bool {
		got, err := second.GetAction(ctx, &workflowsv1.GetActionRequest{OrgId: org, ActionId: a.GetActionId()})
		return err == nil && got.GetAction().GetRevision() == a.GetRevision()
	}, "the second replica has the action")
	upd, err := s.workflows.UpdateAction(ctx, &workflowsv1.UpdateActionRequest{OrgId: org, Caller: admin, ActionId: a.GetActionId(),
		ExpectedRevision: a.GetRevision(), Spec: &workflowsv1.ActionSpec{RuleId: "deal-won", Module: "Deals", Template: "Won: #{Deals.Deal Name}!",
			TeamId: acme, TargetKind: workflowsv1.TargetKind_TARGET_KIND_CHANNELS, Targets: []string{acmeSales}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.workflows.UpdateAction(ctx, &workflowsv1.UpdateActionRequest{OrgId: org, Caller: admin, ActionId: a.GetActionId(),
		ExpectedRevision: a.GetRevision(), Spec: &workflowsv1.ActionSpec{RuleId: "deal-won", Module: "Deals", Template: "stale",
			TeamId: acme, TargetKind: workflowsv1.TargetKind_TARGET_KIND_CHANNELS, Targets: []string{acmeSales}}}); status.Code(err) != codes.Aborted {
		t.Errorf("an update from a stale revision: %v", err)
	}
	testkit.Eventually(t, 20*time.Second, func() bool {
		got, err := second.GetAction(ctx, &workflowsv1.GetActionRequest{OrgId: org, ActionId: a.GetActionId()})
		return err == nil && got.GetAction().GetRevision() == upd.GetAction().GetRevision()
	}, "the second replica sees the update")
	s.publish(t, trigger("trig-r", "deal-won", deal("d-7", "Initech")))
	m := waitMessages(t, s, 1, slackstandin.MessageFilter{Team: acme, Channel: acmeSales, Kind: slackstandin.KindMessage})[0]
	if m.Text != "Won: Initech!" {
		t.Errorf("text %q", m.Text)
	}
	s.triggersDone(t)
	if n := s.countOut(t); n != 1 {
		t.Errorf("%d commands for one trigger with two replicas", n)
	}
}

// TestAnImportTeachesTheSchema: a module's records backfilled by crmctl
// import (one RecordsImported per batch) teach workflows its schema, as
// its upserts would.
func TestAnImportTeachesTheSchema(t *testing.T) {
	s := startStack(t, options{})
	rec, err := proto.Marshal(deal("d-1", "Imported"))
	if err != nil {
		t.Fatal(err)
	}
	s.publish(t, &crmv1.RecordsImported{Envelope: harness.Envelope(org, ""), Schema: dealSchema(), Records: [][]byte{rec}})
	testkit.Eventually(t, 20*time.Second, func() bool {
		got, err := s.workflows.GetModuleSchema(testkit.Context(t), &workflowsv1.GetModuleSchemaRequest{OrgId: org, Module: "Deals"})
		return err == nil && got.GetSchema().GetDisplayField() == dealSchema().GetDisplayField()
	}, "workflows knows the Deals schema from an import")
}
