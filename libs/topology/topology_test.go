package topology

import (
	"errors"
	"strconv"
	"testing"

	"google.golang.org/protobuf/proto"

	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	sharingv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/sharing/v1"
	slackv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/slack/v1"
)

func env(org string) *commonv1.Envelope { return &commonv1.Envelope{EventId: "e1", OrgId: org} }

func TestSubjectFor(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		msg  proto.Message
		want string
		err  bool
	}{
		{"upsert", &crmv1.RecordUpserted{Envelope: env("org1"), Record: &crmv1.Record{Module: "Deals"}}, "crm.v1.org1.record.upserted.Deals", false},
		{"import", &crmv1.RecordsImported{Envelope: env("org1"), Schema: &crmv1.ModuleSchema{Module: "Leads"}}, "crm.v1.org1.record.imported.Leads", false},
		{"import without a schema", &crmv1.RecordsImported{Envelope: env("org1")}, "", true},
		{"delete", &crmv1.RecordDeleted{Envelope: env("org1"), Module: "Leads"}, "crm.v1.org1.record.deleted.Leads", false},
		{"workflow", &crmv1.WorkflowRuleTriggered{Envelope: env("org1")}, "crm.v1.org1.workflow.triggered", false},
		{"activity", &crmv1.ActivityCancelled{Envelope: env("o")}, "crm.v1.o.activity.cancelled", false},
		{"signal", &crmv1.SalesSignal{Envelope: env("o"), Channel: crmv1.SignalChannel_SIGNAL_CHANNEL_SUPPORT_TICKET}, "crm.v1.o.signal.support_ticket", false},
		{"user", &crmv1.CrmUserDeactivated{Envelope: env("o")}, "crm.v1.o.user.deactivated", false},
		{"share record", &sharingv1.ShareRecordRequested{Envelope: env("o")}, "crm.v1.o.share.record", false},
		{"share chart", &sharingv1.ShareChartRequested{Envelope: env("o")}, "crm.v1.o.share.chart", false},
		{"signal without channel", &crmv1.SalesSignal{Envelope: env("o")}, "", true},
		{"dotted org", &crmv1.WorkflowRuleTriggered{Envelope: env("a.b")}, "", true},
		{"missing org", &crmv1.WorkflowRuleTriggered{Envelope: env("")}, "", true},
		{"wildcard module", &crmv1.RecordUpserted{Envelope: env("o"), Record: &crmv1.Record{Module: "*"}}, "", true},
		{"no envelope field", &crmv1.Record{}, "", true},
		{"not an event with a derived subject", &slackv1.PostMessage{Envelope: env("o")}, "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := SubjectFor(c.msg)
			if (err != nil) != c.err || got != c.want {
				t.Fatalf("SubjectFor = %q, %v; want %q, error %v", got, err, c.want, c.err)
			}
		})
	}
}

func TestToken(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "a.b", "a*", ">", "a b", "a\tb"} {
		if _, err := Token(bad); !errors.Is(err, ErrBadToken) {
			t.Errorf("Token(%q) = %v, want ErrBadToken", bad, err)
		}
	}
	if got, err := Token("T0123-abc_9"); err != nil || got != "T0123-abc_9" {
		t.Errorf("Token = %q, %v", got, err)
	}
}

func TestStreamsKeepDuplicatesLongerThanSlackRetries(t *testing.T) {
	t.Parallel()
	for _, s := range Streams(StreamOptions{}) {
		if s.Duplicates < DuplicateWindow || s.Replicas != 1 || len(s.Subjects) != 1 {
			t.Errorf("stream %s: %+v", s.Name, s)
		}
	}
}

func TestSlackOutIsPartitioned(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ opt, want int }{{0, SlackOutPartitions}, {16, 16}} {
		for _, s := range Streams(StreamOptions{SlackOutPartitions: tc.opt}) {
			tr := s.SubjectTransform
			if s.Name != StreamSlackOut {
				if tr != nil {
					t.Errorf("stream %s has a subject transform", s.Name)
				}
				continue
			}
			want := "slack.out.v1.{{wildcard(1)}}.{{wildcard(2)}}.{{wildcard(3)}}.{{partition(" + strconv.Itoa(tc.want) + ",1,2)}}"
			if tr == nil || tr.Source != "slack.out.v1.*.*.*" || tr.Destination != want {
				t.Errorf("SLACK_OUT transform %+v, want %s", tr, want)
			}
		}
	}
	if got := SlackOutPartition(3); got != "slack.out.v1.*.*.*.3" {
		t.Errorf("SlackOutPartition(3) = %s", got)
	}
}

func TestSelect(t *testing.T) {
	t.Parallel()
	got := Select(StreamOptions{Replicas: 3}, StreamSlackOut, StreamCRM)
	if len(got) != 2 || got[0].Name != StreamSlackOut || got[1].Name != StreamCRM || got[0].Replicas != 3 {
		t.Fatalf("Select = %+v", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("an unknown stream name did not panic")
		}
	}()
	Select(StreamOptions{}, "NOPE")
}
