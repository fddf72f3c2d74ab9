package render

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/blockkit"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestRenderGolden(t *testing.T) {
	t.Parallel()
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 1, 13, 30, 0, 0, time.UTC)
	meeting := &crmv1.Activity{
		Id: "ev-1", Kind: crmv1.ActivityKind_ACTIVITY_KIND_EVENT, Version: 2, Subject: "Zylker <renewal> demo",
		Description: "Bring the Q4 numbers.", StartAt: timestamppb.New(start), TimeZone: "Europe/Paris",
		ReminderMinutesBefore: []int32{15}, Location: "https://meet.example.com/zylker",
		Owner:        &commonv1.CrmUserRef{Id: "u-alice", Name: "Alice Johnson", Email: "alice@acme.example"},
		Participants: []*commonv1.CrmUserRef{{Id: "u-bob", Name: "Bob Smith"}, {Name: "Zoe (Zylker)", Email: "zoe@zylker.example"}},
		RelatedTo:    &commonv1.RecordRef{Module: "Deals", Id: "d-1001", Name: "Zylker Q4 licences"},
	}
	task := &crmv1.Activity{
		Id: "t-7", Kind: crmv1.ActivityKind_ACTIVITY_KIND_TASK, Version: 1, Subject: "Send the contract",
		StartAt: timestamppb.New(start), Priority: "High", Owner: &commonv1.CrmUserRef{Id: "u-alice", Name: "Alice Johnson"},
		Url: "https://crm.example.com/tasks/t-7",
	}
	call := &crmv1.Activity{
		Id: "c-3", Kind: crmv1.ActivityKind_ACTIVITY_KIND_CALL, Version: 5, Subject: "Call Zoe",
		StartAt: timestamppb.New(start), CallDirection: crmv1.CallDirection_CALL_DIRECTION_OUTBOUND, Location: "Room 4",
		Owner: &commonv1.CrmUserRef{Id: "u-alice", Name: "Alice Johnson"},
	}
	cases := []struct {
		name string
		in   Input
	}{
		{"meeting", Input{Activity: meeting, Now: start.Add(-15 * time.Minute), DueAt: start.Add(-15 * time.Minute), Loc: paris}},
		{"task_late", Input{Activity: task, Now: start.Add(-5 * time.Minute), DueAt: start.Add(-60 * time.Minute), Late: true, Loc: paris}},
		{"call", Input{Activity: call, Now: start.Add(-90 * time.Minute), DueAt: start.Add(-90 * time.Minute)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.in.ButtonValue = "r1.signed-value"
			tc.in.Snooze = 10 * time.Minute
			tc.in.CRMBaseURL = "https://crm.example.com/crm/acme"
			m := Render(tc.in)
			blocks, err := json.MarshalIndent(slack.Blocks{BlockSet: m.Blocks}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			if err := blockkit.Validate(blocks); err != nil {
				t.Fatalf("Slack would refuse the blocks: %v", err)
			}
			got := append([]byte(m.Text+"\n"), blocks...)
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from %s:\n%s", tc.name, path, got)
			}
		})
	}
}

func TestRelative(t *testing.T) {
	t.Parallel()
	ev, task := crmv1.ActivityKind_ACTIVITY_KIND_EVENT, crmv1.ActivityKind_ACTIVITY_KIND_TASK
	for _, tc := range []struct {
		d    time.Duration
		k    crmv1.ActivityKind
		want string
	}{
		{15*time.Minute - 300*time.Millisecond, ev, "starts in 15 minutes"},
		{time.Minute, ev, "starts in 1 minute"},
		{10 * time.Second, task, "is due now"},
		{90 * time.Minute, ev, "starts in 1 hour 30 minutes"},
		{2 * time.Hour, ev, "starts in 2 hours"},
		{-5 * time.Minute, ev, "started 5 minutes ago"},
		{49 * time.Hour, ev, "starts in 2 days"},
	} {
		if got := relative(tc.d, tc.k); got != tc.want {
			t.Errorf("relative(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestRenderStaysInsideSlackLimits(t *testing.T) {
	t.Parallel()
	a := &crmv1.Activity{
		Id: "x", Kind: crmv1.ActivityKind_ACTIVITY_KIND_TASK, Subject: strings.Repeat("long subject ", 50),
		Description: strings.Repeat("d", 5000), Location: strings.Repeat("where ", 600),
		StartAt: timestamppb.Now(), Owner: &commonv1.CrmUserRef{Id: "u", Name: "U"},
	}
	for range 40 {
		a.Participants = append(a.Participants, &commonv1.CrmUserRef{Name: strings.Repeat("n", 100)})
	}
	m := Render(Input{Activity: a, Now: time.Now(), ButtonValue: "r1.signed-value", Snooze: 10 * time.Minute})
	blocks, err := json.Marshal(slack.Blocks{BlockSet: m.Blocks})
	if err != nil {
		t.Fatal(err)
	}
	if err := blockkit.Validate(blocks); err != nil {
		t.Fatalf("Slack would refuse the blocks: %v", err)
	}
}
