package web

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	sharingv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/sharing/v1"
	workflowsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/workflows/v1"

	"github.com/crmslack/crmslack/services/console/internal/session"
)

// modules are the CRM modules a rule may belong to (the four of the seed).
var modules = []string{"Deals", "Leads", "Contacts", "Accounts"}

type actionRow struct {
	ID, Rule, Module, Team, Kind, Targets, Template, Updated string
	Revision                                                 uint64
	Flagged                                                  int
}

type workflowsData struct {
	Rule    string
	Actions []actionRow
}

func kindWord(k workflowsv1.TargetKind) string {
	if k == workflowsv1.TargetKind_TARGET_KIND_USERS {
		return "Utilisateurs"
	}
	return "Canaux"
}

func (h *handler) workflowsPage(w http.ResponseWriter, r *http.Request, s *session.Session) {
	rule := strings.TrimSpace(r.URL.Query().Get("rule"))
	resp, err := h.Workflows.ListActions(r.Context(), &workflowsv1.ListActionsRequest{RuleId: rule})
	if err != nil {
		h.fail(w, r, s, "Actions de workflow", err)
		return
	}
	d := workflowsData{Rule: rule}
	for _, a := range resp.GetActions() {
		sp := a.GetSpec()
		d.Actions = append(d.Actions, actionRow{
			ID: a.GetActionId(), Rule: sp.GetRuleId(), Module: sp.GetModule(), Team: sp.GetTeamId(), Kind: kindWord(sp.GetTargetKind()),
			Targets: strings.Join(sp.GetTargets(), ", "), Template: sp.GetTemplate(), Updated: when(a.GetUpdatedAt().AsTime()),
			Revision: a.GetRevision(), Flagged: len(a.GetFlaggedTargets()),
		})
	}
	h.render(w, r, http.StatusOK, "workflows", page{Title: "Actions de workflow", Nav: "workflows", Data: d}, s)
}

// actionForm is the editor's state: what was typed, and each field's
// error.
type actionForm struct {
	ID       string
	Revision uint64
	Spec     formSpec
	Errors   map[string]string
	Teams    []teamOption
	Modules  []string
	Fields   []fieldOption
	// FieldsErr says why no field could be offered (module never seen).
	FieldsErr string
	History   []historyRow
	Flagged   []*workflowsv1.FlaggedTarget
	// Channels and People of the chosen team, to tick as targets.
	Channels, People []targetOption
	// TargetsErr says why they could not be listed.
	TargetsErr string
}

type targetOption struct {
	ID, Name string
	On       bool
}

type formSpec struct {
	Rule, Module, Template, Team, Kind, Targets string
	AttachCard, NotifyOwner                     bool
}

type teamOption struct{ ID, Name string }

type historyRow struct {
	At, Trigger, Record, Outcome, Reason string
	Messages                             []messageRow
}

type messageRow struct{ Target, Outcome, Permalink, Reason string }

var outcomeWords = map[workflowsv1.Outcome]string{
	workflowsv1.Outcome_OUTCOME_SENT: "Envoyé", workflowsv1.Outcome_OUTCOME_POSTED: "Publié", workflowsv1.Outcome_OUTCOME_FAILED: "Échec",
	workflowsv1.Outcome_OUTCOME_SKIPPED: "Ignoré", workflowsv1.Outcome_OUTCOME_REMOVED: "Supprimé",
}

func specOf(f formSpec) *workflowsv1.ActionSpec {
	kind := workflowsv1.TargetKind_TARGET_KIND_CHANNELS
	if f.Kind == "users" {
		kind = workflowsv1.TargetKind_TARGET_KIND_USERS
	}
	var targets []string
	for _, t := range strings.FieldsFunc(f.Targets, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }) {
		targets = append(targets, strings.TrimSpace(t))
	}
	return &workflowsv1.ActionSpec{RuleId: strings.TrimSpace(f.Rule), Module: f.Module, Template: f.Template, TeamId: f.Team,
		TargetKind: kind, Targets: targets, AttachCard: f.AttachCard, NotifyOwner: f.NotifyOwner}
}

func formOf(sp *workflowsv1.ActionSpec) formSpec {
	kind := "channels"
	if sp.GetTargetKind() == workflowsv1.TargetKind_TARGET_KIND_USERS {
		kind = "users"
	}
	return formSpec{Rule: sp.GetRuleId(), Module: sp.GetModule(), Template: sp.GetTemplate(), Team: sp.GetTeamId(), Kind: kind,
		Targets: strings.Join(sp.GetTargets(), ", "), AttachCard: sp.GetAttachCard(), NotifyOwner: sp.GetNotifyOwner()}
}

// postedSpec is the form's spec: the targets ticked in the team's lists
// (of the kind chosen) and those typed.
func postedSpec(r *http.Request) formSpec {
	f := r.PostForm
	kind := f.Get("target_kind")
	targets := slices.Clone(f["target_"+kind])
	if typed := strings.TrimSpace(f.Get("targets")); typed != "" {
		targets = append(targets, typed)
	}
	return formSpec{Rule: f.Get("rule_id"), Module: f.Get("module"), Template: f.Get("template"), Team: f.Get("team_id"),
		Kind: kind, Targets: strings.Join(targets, ", "), AttachCard: f.Get("attach_card") == "on", NotifyOwner: f.Get("notify_owner") == "on"}
}

// targets lists the chosen team's channels and people (the share dialog's
// API), ticking the action's targets; targets that are in neither list
// stay in the text field.
func (h *handler) targets(r *http.Request, f *actionForm) {
	team := f.Spec.Team
	if team == "" && len(f.Teams) > 0 {
		team = f.Teams[0].ID
	}
	if team == "" {
		return
	}
	resp, err := h.Sharing.ListTargets(r.Context(), &sharingv1.ListTargetsRequest{TeamId: team})
	if err != nil {
		_, f.TargetsErr = apiError(err)
		return
	}
	chosen := map[string]bool{}
	for _, t := range specOf(f.Spec).GetTargets() {
		chosen[t] = true
	}
	listed := map[string]bool{}
	for _, c := range resp.GetChannels() {
		f.Channels = append(f.Channels, targetOption{ID: c.GetId(), Name: "#" + c.GetName(), On: f.Spec.Kind == "channels" && chosen[c.GetId()]})
		listed[c.GetId()] = f.Spec.Kind == "channels"
	}
	for _, u := range resp.GetUsers() {
		name := u.GetRealName()
		if name == "" {
			name = u.GetName()
		}
		f.People = append(f.People, targetOption{ID: u.GetId(), Name: name, On: f.Spec.Kind == "users" && chosen[u.GetId()]})
		listed[u.GetId()] = listed[u.GetId()] || f.Spec.Kind == "users"
	}
	var rest []string
	for _, t := range specOf(f.Spec).GetTargets() {
		if !listed[t] {
			rest = append(rest, t)
		}
	}
	f.Spec.Targets = strings.Join(rest, ", ")
}

// fieldOf says which form field a refusal of the workflows API is about,
// from its message (the API's InvalidArgument messages name the field
// first); "" is the form as a whole.
func fieldOf(err error) string {
	st := status.Convert(err)
	msg := st.Message()
	switch {
	case strings.HasPrefix(msg, "template"):
		return "template"
	case strings.HasPrefix(msg, "rule_id"):
		return "rule_id"
	case strings.HasPrefix(msg, "module"), strings.HasPrefix(msg, "no field metadata of module"):
		return "module"
	case strings.HasPrefix(msg, "team_id"), strings.Contains(msg, "Slack team"):
		return "team_id"
	case strings.HasPrefix(msg, "target_kind"):
		return "target_kind"
	case strings.Contains(msg, "target"), strings.HasPrefix(msg, "channel "), strings.HasPrefix(msg, "user "):
		return "targets"
	}
	return ""
}

// editor fills in what the form offers: the user's teams, the modules and
// the module's fields.
func (h *handler) editor(r *http.Request, s *session.Session, f *actionForm) {
	f.Modules = modules
	if f.Spec.Module == "" {
		f.Spec.Module = modules[0]
	}
	if f.Spec.Kind == "" {
		f.Spec.Kind = "channels"
	}
	// Only teams the admin added and belongs to (the seed).
	teams, err := h.activeTeams(r, s.Claims.Email)
	if err != nil {
		_, msg := apiError(err)
		f.setError("team_id", msg)
	}
	f.Teams = teams
	h.targets(r, f)
	fields, err := h.fields(r, f.Spec.Module)
	if err != nil {
		_, f.FieldsErr = apiError(err)
	}
	f.Fields = fields
}

func (f *actionForm) setError(field, msg string) {
	if f.Errors == nil {
		f.Errors = map[string]string{}
	}
	if f.Errors[field] == "" {
		f.Errors[field] = msg
	}
}

func (h *handler) newActionPage(w http.ResponseWriter, r *http.Request, s *session.Session) {
	f := &actionForm{Spec: formSpec{Rule: r.URL.Query().Get("rule"), Module: r.URL.Query().Get("module")}}
	h.editor(r, s, f)
	h.render(w, r, http.StatusOK, "action", page{Title: "Nouvelle action instantanée", Nav: "workflows", Data: f}, s)
}

func (h *handler) actionPage(w http.ResponseWriter, r *http.Request, s *session.Session) {
	id := r.PathValue("id")
	resp, err := h.Workflows.GetAction(r.Context(), &workflowsv1.GetActionRequest{ActionId: id})
	if err != nil {
		h.fail(w, r, s, "Action instantanée", err)
		return
	}
	a := resp.GetAction()
	f := &actionForm{ID: a.GetActionId(), Revision: a.GetRevision(), Spec: formOf(a.GetSpec()), Flagged: a.GetFlaggedTargets()}
	h.editor(r, s, f)
	h.history(r, f)
	h.render(w, r, http.StatusOK, "action", page{Title: "Action instantanée · " + a.GetSpec().GetRuleId(), Nav: "workflows", Data: f}, s)
}

func (h *handler) history(r *http.Request, f *actionForm) {
	resp, err := h.Workflows.ListHistory(r.Context(), &workflowsv1.ListHistoryRequest{ActionId: f.ID, Limit: 20})
	if err != nil {
		_, msg := apiError(err)
		f.setError("history", msg)
		return
	}
	for _, x := range resp.GetExecutions() {
		row := historyRow{At: when(x.GetAt().AsTime()), Trigger: x.GetTriggerEventId(), Record: x.GetRecordId(), Outcome: outcomeWords[x.GetOutcome()], Reason: x.GetReason()}
		for _, m := range x.GetMessages() {
			row.Messages = append(row.Messages, messageRow{Target: m.GetTarget(), Outcome: outcomeWords[m.GetOutcome()], Permalink: m.GetPermalink(), Reason: m.GetReason()})
		}
		f.History = append(f.History, row)
	}
}

// saveAction creates (no id) or updates an action; a refusal is shown at
// its field, with everything typed kept.
func (h *handler) saveAction(w http.ResponseWriter, r *http.Request, s *session.Session) {
	id := r.PathValue("id")
	f := &actionForm{ID: id, Spec: postedSpec(r)}
	f.Revision, _ = strconv.ParseUint(r.PostForm.Get("revision"), 10, 64)
	var err error
	var saved *workflowsv1.Action
	if id == "" {
		var resp *workflowsv1.CreateActionResponse
		if resp, err = h.Workflows.CreateAction(r.Context(), &workflowsv1.CreateActionRequest{Spec: specOf(f.Spec)}); err == nil {
			saved = resp.GetAction()
		}
	} else {
		var resp *workflowsv1.UpdateActionResponse
		if resp, err = h.Workflows.UpdateAction(r.Context(), &workflowsv1.UpdateActionRequest{ActionId: id, Spec: specOf(f.Spec), ExpectedRevision: f.Revision}); err == nil {
			saved = resp.GetAction()
		}
	}
	if err == nil {
		ok := "action-updated"
		if id == "" {
			ok = "action-created"
		}
		http.Redirect(w, r, "/workflows/"+saved.GetActionId()+"?ok="+ok, http.StatusSeeOther)
		return
	}
	if status.Code(err) == codes.Unauthenticated {
		h.refuse(w, r, err)
		return
	}
	code, msg := apiError(err)
	f.setError(fieldOf(err), msg)
	h.editor(r, s, f)
	if id != "" {
		h.history(r, f)
	}
	title := "Nouvelle action instantanée"
	if id != "" {
		title = "Action instantanée · " + f.Spec.Rule
	}
	h.render(w, r, code, "action", page{Title: title, Nav: "workflows", Error: "L'action n'a pas été enregistrée : voir le champ signalé.", Data: f}, s)
}

func (h *handler) deleteAction(w http.ResponseWriter, r *http.Request, s *session.Session) {
	if _, err := h.Workflows.DeleteAction(r.Context(), &workflowsv1.DeleteActionRequest{ActionId: r.PathValue("id")}); err != nil {
		h.fail(w, r, s, "Supprimer une action", err)
		return
	}
	http.Redirect(w, r, "/workflows?ok=action-deleted", http.StatusSeeOther)
}

// fieldOption is one choice after "#": the tag it inserts.
type fieldOption struct {
	Tag   string `json:"tag"`
	Label string `json:"label"`
	API   string `json:"api"`
	Type  string `json:"type"`
}

// fields are the tags a template of module may use: the module's fields as
// the workflows service knows them (GetModuleSchema), then the owner's and
// the record's (docs/workflows.md).
func (h *handler) fields(r *http.Request, module string) ([]fieldOption, error) {
	resp, err := h.Workflows.GetModuleSchema(r.Context(), &workflowsv1.GetModuleSchemaRequest{Module: module})
	if err != nil {
		return nil, err
	}
	sc := resp.GetSchema()
	var out []fieldOption
	for _, f := range sc.GetFields() {
		out = append(out, fieldOption{Tag: "#{" + sc.GetModule() + "." + f.GetLabel() + "}", Label: f.GetLabel(), API: sc.GetModule() + "." + f.GetApiName(),
			Type: strings.ToLower(strings.TrimPrefix(f.GetType().String(), "FIELD_TYPE_"))})
	}
	out = append(out,
		fieldOption{Tag: "#{Owner.Full Name}", Label: "Propriétaire : nom", API: "Owner.Full_Name", Type: "owner"},
		fieldOption{Tag: "#{Owner.Email}", Label: "Propriétaire : e-mail", API: "Owner.Email", Type: "owner"},
		fieldOption{Tag: "#{Record.Link}", Label: "Lien vers l'enregistrement", API: "Record.Link", Type: "link"},
	)
	return out, nil
}

// fieldsJSON serves a module's tags to the editor's "#" completion.
func (h *handler) fieldsJSON(w http.ResponseWriter, r *http.Request, s *session.Session) {
	out, err := h.fields(r, r.URL.Query().Get("module"))
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		code, msg := apiError(err)
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"fields": out})
}
