package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/crmslack/crmslack/libs/identity"
	"github.com/crmslack/crmslack/libs/testkit"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"
)

var fixed = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func TestDecodeEvents(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		input    string
		subjects []string
		errs     []string
	}{
		{
			name:     "ndjson with blank lines",
			input:    `{"type":"crmslack.crm.v1.WorkflowRuleTriggered","event":{"envelope":{"orgId":"o1"},"ruleId":"r1"}}` + "\n\n" + `{"type":"crmslack.crm.v1.RecordDeleted","event":{"envelope":{"orgId":"o1"},"module":"Leads","recordId":"l1","version":"2"}}`,
			subjects: []string{"crm.v1.o1.workflow.triggered", "crm.v1.o1.record.deleted.Leads"},
		},
		{
			name:     "json array",
			input:    `[{"type":"crmslack.crm.v1.ActivityScheduled","event":{"envelope":{"orgId":"o1"},"activity":{"id":"a1"}}}]`,
			subjects: []string{"crm.v1.o1.activity.scheduled"},
		},
		{
			name:     "explicit subject",
			input:    `{"type":"crmslack.integration.v1.TeamRemoved","subject":"integration.v1.o1.team.removed","event":{"envelope":{"orgId":"o1"},"teamId":"T1"}}`,
			subjects: []string{"integration.v1.o1.team.removed"},
		},
		{
			name: "every bad line reported with its number, nothing kept",
			input: strings.Join([]string{
				`{"type":"crmslack.crm.v1.WorkflowRuleTriggered","event":{"envelope":{"orgId":"o1"}}}`,
				`{"type":"crmslack.crm.v1.Nope","event":{}}`,
				`not json`,
				`{"type":"crmslack.crm.v1.RecordUpserted","event":{"envelope":{},"record":{"module":"Deals"}}}`,
				`{"type":"crmslack.slack.v1.PostMessage","event":{"envelope":{"orgId":"o1"}}}`,
				`{"type":"crmslack.crm.v1.RecordUpserted","event":{"envelope":{"orgId":"o1"},"record":{"module":"De.als"}}}`,
				`{"type":"crmslack.crm.v1.RecordUpserted","event":{"envelope":{"orgId":"o1"},"record":{"bogus":1}}}`,
				`{"type":"crmslack.crm.v1.RecordUpserted","extra":1,"event":{}}`,
			}, "\n"),
			errs: []string{"in:2: unknown type", "in:3: not an event object", "in:4: envelope.orgId is required", "in:5: type \"crmslack.slack.v1.PostMessage\" is not a publishable", "in:6: module", "in:7: event:", "in:8: not an event object"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			evs, err := decodeEvents("in", strings.NewReader(c.input), fixed)
			if len(c.errs) > 0 {
				if err == nil || evs != nil {
					t.Fatalf("want errors, got %d events", len(evs))
				}
				for _, want := range c.errs {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error lacks %q:\n%v", want, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != len(c.subjects) {
				t.Fatalf("%d events, want %d", len(evs), len(c.subjects))
			}
			for i, ev := range evs {
				if ev.Subject != c.subjects[i] {
					t.Errorf("event %d subject %q, want %q", i, ev.Subject, c.subjects[i])
				}
				env := ev.Msg.GetEnvelope()
				if env.GetEventId() == "" || env.GetProducer() != "crmctl" || env.GetSchemaVersion() != 1 || !env.GetOccurredAt().AsTime().Equal(fixed) {
					t.Errorf("event %d envelope not completed: %v", i, env)
				}
			}
		})
	}
}

func TestDerivedEventIDsAreStable(t *testing.T) {
	t.Parallel()
	in := `{"type":"crmslack.crm.v1.WorkflowRuleTriggered","event":{"envelope":{"orgId":"o1"},"ruleId":"r1"}}
{"type":"crmslack.crm.v1.WorkflowRuleTriggered","event":{"envelope":{"orgId":"o1"},"ruleId":"r2"}}`
	a, err := decodeEvents("a", strings.NewReader(in), fixed)
	if err != nil {
		t.Fatal(err)
	}
	b, err := decodeEvents("b", strings.NewReader(in), fixed.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if a[0].Msg.GetEnvelope().GetEventId() != b[0].Msg.GetEnvelope().GetEventId() {
		t.Error("the same line got two event ids: republishing would double it")
	}
	if a[0].Msg.GetEnvelope().GetEventId() == a[1].Msg.GetEnvelope().GetEventId() {
		t.Error("two different lines share an event id")
	}
}

func TestTypesAndMethodsList(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if code := run(context.Background(), []string{"types"}, nil, &out, &out); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"crmslack.crm.v1.RecordUpserted", "crmslack.crm.v1.SalesSignal", "crmslack.integration.v1.TeamInstalled"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("types lacks %s", want)
		}
	}
	if strings.Contains(out.String(), "crmslack.crm.v1.Record\n") {
		t.Error("types lists a message without an envelope")
	}
	out.Reset()
	if code := run(context.Background(), []string{"methods"}, nil, &out, &out); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"crmslack.teams.v1.TeamRegistryService/ListTeams", "crmslack.delivery.v1.DeliveryAuditService/ListDeliveries", "crmslack.sharing.v1.SharingService/ShareRecord"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("methods lacks %s", want)
		}
	}
}

func TestPublishRefusesInvalidFilesWhole(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	bad := filepath.Join(t.TempDir(), "bad.ndjson")
	writeFile(t, bad, `{"type":"crmslack.crm.v1.WorkflowRuleTriggered","event":{"envelope":{"orgId":"o1"}}}`+"\n"+`{"type":"x"}`)
	// No NATS is listening on this URL: a refusal must come before any
	// connection attempt.
	code := run(context.Background(), []string{"publish", "-nats", "nats://127.0.0.1:1", bad}, nil, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "nothing published") || !strings.Contains(errb.String(), "bad.ndjson:2") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

func TestDryRunPrintsSubjects(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"publish", "-dry-run", "testdata/events.ndjson"}, nil, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"crm.v1.org1.record.upserted.Deals", "crm.v1.org1.signal.call\tsig-1", "crm.v1.org1.user.upserted", "3 events valid"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// registry answers ListTeams like the team registry would.
type registry struct {
	teamsv1.UnimplementedTeamRegistryServiceServer
}

func (registry) ListTeams(_ context.Context, req *teamsv1.ListTeamsRequest) (*teamsv1.ListTeamsResponse, error) {
	if req.GetOrgId() != "org1" {
		return nil, status.Errorf(codes.NotFound, "org %q has no integration", req.GetOrgId())
	}
	return &teamsv1.ListTeamsResponse{IntegrationEnabled: true, Teams: []*teamsv1.OrgTeam{{OrgId: "org1", Status: teamsv1.TeamStatus_TEAM_STATUS_ACTIVE}}}, nil
}

func TestCallInvokesAnyMethodWithJSON(t *testing.T) {
	t.Parallel()
	// Served as the registry is (mutual TLS, the table, CRM credentials);
	// crmctl signs the CRM's credential with the development keys.
	addr := testkit.GRPCServer(t, identity.Teams, func(s *grpc.Server) { teamsv1.RegisterTeamRegistryServiceServer(s, registry{}) })
	call := func(args ...string) []string { return append([]string{"call", "-pki", testkit.PKI(t).Path()}, args...) }

	var out, errb bytes.Buffer
	code := run(context.Background(), call("-addr", addr, "TeamRegistryService/ListTeams", `{"orgId":"org1"}`), nil, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out.String(), errb.String())
	}
	var got teamsv1.ListTeamsResponse
	if err := protojson.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("output is not a ListTeamsResponse: %v\n%s", err, out.String())
	}
	if !got.GetIntegrationEnabled() || len(got.GetTeams()) != 1 || got.GetTeams()[0].GetStatus() != teamsv1.TeamStatus_TEAM_STATUS_ACTIVE {
		t.Fatalf("response = %v", &got)
	}
	out.Reset()
	errb.Reset()
	code = run(context.Background(), call("-addr", addr, "crmslack.teams.v1.TeamRegistryService/ListTeams"), strings.NewReader(`{"orgId":"zz"}`), &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "NotFound") || !strings.Contains(errb.String(), `org "zz"`) {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	code = run(context.Background(), call("-addr", addr, "ListTeams", `{"nope":1}`), nil, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "not a valid crmslack.teams.v1.ListTeamsRequest") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	errb.Reset()
	code = run(context.Background(), []string{"call", "NoSuchMethod"}, nil, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "no method") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	// As a service the table does not let list an org's teams: refused.
	errb.Reset()
	code = run(context.Background(), call("-as", identity.Delivery, "-addr", addr, "ListTeams", `{"orgId":"org1"}`), nil, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "PermissionDenied") {
		t.Fatalf("as delivery: exit %d, stderr %q", code, errb.String())
	}
}
