package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/slackstandin"
	"github.com/crmslack/crmslack/libs/testkit"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	workflowsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/workflows/v1"
)

const examples = "../../../deploy/crmctl/testdata/workflows/"

// events reads a crmctl publish file: {"type": ..., "event": {...}} per line.
func events(t *testing.T, path string) []bus.Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []bus.Event
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			Type  string          `json:"type"`
			Event json.RawMessage `json:"event"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		var ev bus.Event
		switch line.Type {
		case "crmslack.crm.v1.RecordUpserted":
			ev = &crmv1.RecordUpserted{}
		case "crmslack.crm.v1.WorkflowRuleTriggered":
			ev = &crmv1.WorkflowRuleTriggered{}
		default:
			t.Fatalf("unexpected type %s", line.Type)
		}
		if err := protojson.Unmarshal(line.Event, ev.(proto.Message)); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

// TestCrmctlExamples runs docs/workflows.md's crmctl walk-through with its
// very files: a deal teaches the schema, the action is created from JSON,
// the rule fires from JSON, and the message reaches #sales.
func TestCrmctlExamples(t *testing.T) {
	s := startStack(t, options{})
	s.publish(t, events(t, examples+"deal_upserted.ndjson")...)
	b, err := os.ReadFile(examples + "create_action.json")
	if err != nil {
		t.Fatal(err)
	}
	var req workflowsv1.CreateActionRequest
	if err := protojson.Unmarshal(b, &req); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, func() bool {
		_, err := s.workflows.CreateAction(testkit.Context(t), &req)
		return err == nil
	}, "the example action is saved")
	s.publish(t, events(t, examples+"deal_won.ndjson")...)
	m := waitMessages(t, s, 1, slackstandin.MessageFilter{Team: acme, Channel: acmeSales, Kind: slackstandin.KindMessage})[0]
	if !strings.Contains(m.Text, "Zylker Q4 licences for €125,000.00, closing Dec 15, 2026. Owner: Alice Johnson.") {
		t.Errorf("the example message: %q", m.Text)
	}
	waitMessages(t, s, 1, slackstandin.MessageFilter{Team: acme, User: alice, Kind: slackstandin.KindMessage})
}
