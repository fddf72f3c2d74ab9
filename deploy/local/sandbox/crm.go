package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/deploy/local/demo"
	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	sharingv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/sharing/v1"
)

// The CRM panel plays the CRM: each button publishes what the CRM would
// publish on its bus when the thing happens, nothing the product would not
// get from a real CRM.

// DealWonRule is the workflow rule "deal won" fires.
const DealWonRule = "deal-won"

// crmEvent is one event the panel publishes, with its subject.
type crmEvent struct {
	subject string
	msg     interface {
		proto.Message
		GetEnvelope() *commonv1.Envelope
	}
}

func newEventID(kind string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "sandbox-" + kind + "-" + hex.EncodeToString(b)
}

// findRecord is a demo record by module and id.
func findRecord(module, id string) (*crmv1.Record, error) {
	for _, r := range demo.Records(module) {
		if r.GetId() == id {
			return r, nil
		}
	}
	return nil, fmt.Errorf("no demo record %s/%s", module, id)
}

// dealWon: the deal's stage becomes Closed Won (a new version of the
// record) and the CRM's "deal won" workflow rule fires for it.
func dealWon(org, dealID string, by demo.User, now time.Time) ([]crmEvent, string, error) {
	r, err := findRecord("Deals", dealID)
	if err != nil {
		return nil, "", err
	}
	r.Version = now.UnixMilli() // later than any version seen: this change wins
	r.Fields["Stage"] = &crmv1.FieldValue{Kind: &crmv1.FieldValue_Text{Text: demo.StageWon}}
	r.Fields["Probability"] = &crmv1.FieldValue{Kind: &crmv1.FieldValue_Number{Number: 100}}
	r.ModifiedAt = timestamppb.New(now)
	schema := demo.Schemas()["Deals"]
	up := &crmv1.RecordUpserted{Envelope: demo.Envelope(org, newEventID("deal"), now), Record: r, Schema: schema}
	wf := &crmv1.WorkflowRuleTriggered{Envelope: demo.Envelope(org, newEventID("rule"), now),
		RuleId: DealWonRule, RuleName: "Deal won", Trigger: crmv1.WorkflowTrigger_WORKFLOW_TRIGGER_FIELD_UPDATE,
		Record: r, Schema: schema, TriggeredBy: by.Ref()}
	name := r.GetFields()["Deal_Name"].GetText()
	return []crmEvent{{topology.RecordUpserted(org, "Deals"), up}, {topology.WorkflowTriggered(org), wf}},
		fmt.Sprintf("Deal won: %s (rule %s fired)", name, DealWonRule), nil
}

// ruleFired: a workflow rule fires for a record, unchanged.
func ruleFired(org, ruleID, module, id string, by demo.User, now time.Time) ([]crmEvent, string, error) {
	if ruleID == "" {
		return nil, "", fmt.Errorf("name the rule: its id, as in the console's workflow actions")
	}
	if _, err := topology.Token(ruleID); err != nil {
		return nil, "", fmt.Errorf("rule id %q: %w", ruleID, err)
	}
	r, err := findRecord(module, id)
	if err != nil {
		return nil, "", err
	}
	wf := &crmv1.WorkflowRuleTriggered{Envelope: demo.Envelope(org, newEventID("rule"), now),
		RuleId: ruleID, RuleName: ruleID, Trigger: crmv1.WorkflowTrigger_WORKFLOW_TRIGGER_EDITED,
		Record: r, Schema: demo.Schemas()[module], TriggeredBy: by.Ref()}
	return []crmEvent{{topology.WorkflowTriggered(org), wf}}, fmt.Sprintf("Rule %s fired for %s/%s", ruleID, module, id), nil
}

// missedCall: a customer's call to the record's owner went unanswered.
func missedCall(org, contactID string, now time.Time) ([]crmEvent, string, error) {
	r, err := findRecord("Contacts", contactID)
	if err != nil {
		return nil, "", err
	}
	name := r.GetFields()["Full_Name"].GetText()
	id := newEventID("call")
	ev := &crmv1.SalesSignal{Envelope: demo.Envelope(org, id, now),
		SignalId: id, Channel: crmv1.SignalChannel_SIGNAL_CHANNEL_CALL, Kind: "missed",
		Record:      &commonv1.RecordRef{Module: "Contacts", Id: contactID, Name: name},
		RecordOwner: r.GetOwner(), Title: "Missed call from " + name,
		Summary: "Called and left no message", From: name, FromPhone: r.GetFields()["Phone"].GetText()}
	subject, err := topology.SubjectFor(ev)
	if err != nil {
		return nil, "", err
	}
	return []crmEvent{{subject, ev}}, fmt.Sprintf("Missed call from %s to %s", name, r.GetOwner().GetEmail()), nil
}

// reminderBefore is the offset of the panel activity's reminder.
const reminderBefore = 15

// activity: a call with owner is scheduled so that its reminder (15
// minutes before it starts) falls lead from now.
func activity(org, subject string, owner demo.User, lead time.Duration, now time.Time) ([]crmEvent, string, error) {
	if subject == "" {
		subject = "Call with a customer"
	}
	start := now.Add(lead + reminderBefore*time.Minute).Truncate(time.Second)
	id := newEventID("act")
	ev := &crmv1.ActivityScheduled{Envelope: demo.Envelope(org, id, now), Activity: &crmv1.Activity{
		Id: id, Kind: crmv1.ActivityKind_ACTIVITY_KIND_CALL, Version: 1, Subject: subject,
		StartAt: timestamppb.New(start), EndAt: timestamppb.New(start.Add(30 * time.Minute)), TimeZone: "Europe/Paris",
		ReminderMinutesBefore: []int32{reminderBefore}, Owner: owner.Ref(),
		RelatedTo:     &commonv1.RecordRef{Module: "Contacts", Id: demo.ContactID(0), Name: "Emma Watson"},
		CallDirection: crmv1.CallDirection_CALL_DIRECTION_OUTBOUND,
	}}
	return []crmEvent{{topology.Activity(org, "scheduled"), ev}},
		fmt.Sprintf("Scheduled %q for %s at %s: reminder due at %s", subject, owner.Email, start.Format("15:04:05"), start.Add(-reminderBefore*time.Minute).Format("15:04:05")), nil
}

// chartShared: the CRM shares its "Pipeline by stage" report's chart (the
// demo deals' amounts per stage) in a conversation, as the person shown.
func chartShared(org, team, channel string, sharer demo.User, now time.Time) ([]crmEvent, string, error) {
	if team == "" || channel == "" {
		return nil, "", fmt.Errorf("open a channel to share the chart in")
	}
	sums := map[string]float64{}
	for _, r := range demo.Records("Deals") {
		sums[r.GetFields()["Stage"].GetText()] += r.GetFields()["Amount"].GetNumber()
	}
	stages := demo.Stages[:4] // the open ones: every demo deal is open
	values := make([]float64, len(stages))
	for i, st := range stages {
		values[i] = sums[st]
	}
	id := newEventID("chart")
	ev := &sharingv1.ShareChartRequested{Envelope: demo.Envelope(org, id, now), Request: &sharingv1.ShareChartRequest{
		OrgId: org, Sharer: sharer.Ref(), ReportName: "Pipeline by stage",
		Chart: &sharingv1.Chart{Type: sharingv1.ChartType_CHART_TYPE_COLUMN, Title: "Pipeline by stage", XAxisLabel: "Stage", YAxisLabel: "Amount (EUR)",
			Categories: stages, Series: []*sharingv1.Series{{Name: "Amount", Values: values}}},
		Message: "Pipeline by stage, from the CRM's reports", TeamId: team,
		TargetKind: sharingv1.TargetKind_TARGET_KIND_CHANNELS, Targets: []string{channel},
	}}
	subject, err := topology.SubjectFor(ev)
	if err != nil {
		return nil, "", err
	}
	return []crmEvent{{subject, ev}}, fmt.Sprintf("Chart %q shared by %s", "Pipeline by stage", sharer.Email), nil
}
