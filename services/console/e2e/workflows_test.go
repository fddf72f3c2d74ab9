package e2e

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/testkit/harness"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

func dealSchema() *crmv1.ModuleSchema {
	return &crmv1.ModuleSchema{
		Module: "Deals", SingularLabel: "Deal", PluralLabel: "Deals", DisplayField: "Deal_Name", HasCardView: true,
		Fields: []*crmv1.FieldMeta{
			{ApiName: "Deal_Name", Label: "Deal Name", Type: crmv1.FieldType_FIELD_TYPE_SINGLE_LINE},
			{ApiName: "Amount", Label: "Amount", Type: crmv1.FieldType_FIELD_TYPE_CURRENCY, CurrencyCode: "EUR"},
			{ApiName: "Stage", Label: "Stage", Type: crmv1.FieldType_FIELD_TYPE_PICKLIST},
			{ApiName: "Owner", Label: "Deal Owner", Type: crmv1.FieldType_FIELD_TYPE_OWNER},
		},
	}
}

func deal(id string) *crmv1.Record {
	return &crmv1.Record{
		Module: "Deals", Id: id, Version: 1,
		Owner: &commonv1.CrmUserRef{Id: "crm-alice", Name: "Alice Johnson", Email: aliceEmail},
		Fields: map[string]*crmv1.FieldValue{
			"Deal_Name": {Kind: &crmv1.FieldValue_Text{Text: "Zylker renewal"}},
			"Amount":    {Kind: &crmv1.FieldValue_Number{Number: 125000}},
			"Stage":     {Kind: &crmv1.FieldValue_Text{Text: "Closed Won"}},
		},
	}
}

var actionPathRE = regexp.MustCompile(`^/workflows/([^/?]+)\?ok=action-created$`)

func testWorkflows(t *testing.T, s *stack, b *browser) {
	// The schema reaches workflows with any deal; until then the editor
	// says why it offers no field.
	must(t, "GET /workflows/new before any deal", b.get("/workflows/new"), http.StatusOK, `data-testid="template-fields-error"`)
	harness.Publish(t, s.bus, &crmv1.RecordUpserted{Envelope: harness.Envelope(consoleOrg, ""), Record: deal("d-0"), Schema: dealSchema()})
	testkit.Eventually(t, 20*time.Second, func() bool { return b.get("/workflows/fields?module=Deals").Code == http.StatusOK },
		"workflows never learned the Deals schema")
	must(t, "GET /workflows/fields", b.get("/workflows/fields?module=Deals"), http.StatusOK, `"tag":"#{Deals.Deal Name}"`, `"tag":"#{Owner.Full Name}"`)
	must(t, "GET /workflows/new", b.get("/workflows/new?rule=deal-won"), http.StatusOK,
		`data-testid="action-template"`, `data-testid="field-Deals.Deal_Name"`, `data-testid="field-Deals.Amount"`,
		`<option value="`+acme+`"`, `value="deal-won"`, `data-testid="target-`+acmeSales+`"`, "#sales")

	form := func(template, targets string) url.Values {
		return url.Values{"csrf": {b.csrf("/workflows/new")}, "rule_id": {"deal-won"}, "module": {"Deals"}, "template": {template},
			"team_id": {acme}, "target_kind": {"channels"}, "targets": {targets}}
	}
	// Refusals are shown at their field, with what was typed kept.
	for _, c := range []struct {
		name, template, targets, field, want string
	}{
		{"unknown field", "*Won*: #{Deals.Amout}", acmeSales, "template", "did you mean #{Deals.Amount}"},
		{"unclosed tag", "*Won*: #{Deals.Amount", acmeSales, "template", "template"},
		{"unknown channel", "*Won*: #{Deals.Amount}", "C0NOPE0000", "targets", "C0NOPE0000"},
	} {
		a := b.post("/workflows", form(c.template, c.targets))
		must(t, c.name, a, http.StatusBadRequest, `data-testid="error-`+c.field+`"`, c.want, `aria-invalid="true"`)
		if !strings.Contains(a.Body, htmlEscape(c.template)) {
			t.Fatalf("%s: the template typed is not kept in the form:\n%s", c.name, a.Body)
		}
	}

	// The channel ticked in the team's list.
	created := form("*Deal won*: #{Deals.Deal Name} for #{Deals.Amount}", "")
	created.Set("target_channels", acmeSales)
	a := b.post("/workflows", created)
	m := actionPathRE.FindStringSubmatch(a.Location)
	if a.Code != http.StatusSeeOther || m == nil {
		t.Fatalf("create: %d → %q:\n%s", a.Code, a.Location, a.Body)
	}
	id := m[1]
	must(t, "the new action", b.get(a.Location), http.StatusOK, "Action instantanée enregistrée", `data-testid="history-empty"`, "#{Deals.Deal Name}",
		`data-testid="target-`+acmeSales+`" checked`)
	must(t, "the list", b.get("/workflows?rule=deal-won"), http.StatusOK, `data-testid="workflow-row-`+id+`"`)

	// The rule fires: the history shows the post.
	harness.Publish(t, s.bus, &crmv1.WorkflowRuleTriggered{Envelope: harness.Envelope(consoleOrg, "trigger-1"), RuleId: "deal-won", RuleName: "Deal won",
		Trigger: crmv1.WorkflowTrigger_WORKFLOW_TRIGGER_FIELD_UPDATE, Record: deal("d-1"), Schema: dealSchema(),
		TriggeredBy: &commonv1.CrmUserRef{Id: "crm-alice", Email: aliceEmail}})
	testkit.Eventually(t, 30*time.Second, func() bool {
		return strings.Contains(b.get("/workflows/"+id).Body, `data-testid="history-outcome">Publié`)
	}, "the history never showed the post")

	// Edit: the new template is what the API keeps.
	edit := form("*Won* #{Deals.Stage}", acmeSales)
	edit.Set("csrf", b.csrf("/workflows/"+id))
	a = b.post("/workflows/"+id, edit)
	if a.Code != http.StatusSeeOther || a.Location != "/workflows/"+id+"?ok=action-updated" {
		t.Fatalf("update: %d → %q:\n%s", a.Code, a.Location, a.Body)
	}
	must(t, "the edited action", b.get(a.Location), http.StatusOK, "Action instantanée mise à jour", "*Won* #{Deals.Stage}")

	// Delete.
	a = b.post("/workflows/"+id+"/delete", url.Values{"csrf": {b.csrf("/workflows/" + id)}})
	if a.Code != http.StatusSeeOther {
		t.Fatalf("delete: %d:\n%s", a.Code, a.Body)
	}
	if got := b.get("/workflows?rule=deal-won"); strings.Contains(got.Body, id) {
		t.Fatalf("the deleted action is still listed:\n%s", got.Body)
	}
}

// htmlEscape is how html/template writes text.
func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;", "+", "&#43;").Replace(s)
}
