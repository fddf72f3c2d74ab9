package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"

	workflowsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/workflows/v1"
)

// The examples of docs/workflows.md: an action created with `crmctl call`
// and a rule fired with `crmctl publish`.
func TestWorkflowExamples(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"methods"}, nil, &out, &errb); code != 0 || !strings.Contains(out.String(), "crmslack.workflows.v1.WorkflowActionsService/CreateAction") {
		t.Fatalf("methods (exit %d) lacks WorkflowActionsService/CreateAction:\n%s", code, out.String())
	}
	if got := addrFor(workflowsv1.File_crmslack_workflows_v1_workflows_proto.Services().Get(0)); got != "127.0.0.1:9105" && os.Getenv("WORKFLOWS_ADDR") == "" {
		t.Errorf("workflows' default address is %s", got)
	}
	b, err := os.ReadFile("testdata/workflows/create_action.json")
	if err != nil {
		t.Fatal(err)
	}
	var req workflowsv1.CreateActionRequest
	if err := protojson.Unmarshal(b, &req); err != nil || req.GetSpec().GetRuleId() != "deal-won" {
		t.Fatalf("create_action.json is not a CreateActionRequest: %v", err)
	}
	out.Reset()
	code := run(context.Background(), []string{"publish", "-dry-run", "testdata/workflows/deal_upserted.ndjson", "testdata/workflows/deal_won.ndjson"}, nil, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "crm.v1.acme-crm.workflow.triggered\tdeal-won-d1001-1") || !strings.Contains(out.String(), "crm.v1.acme-crm.record.upserted.Deals") {
		t.Fatalf("exit %d: %s%s", code, out.String(), errb.String())
	}
}
