// Package app is the workflows service's application layer: each exported
// method of [Service] is one use case. Admins keep a rule's "Notify via
// Slack" actions (checked against the module's latest field metadata, the
// org's active teams and the team's directory); a firing of the rule
// renders every action and hands its messages to the Slack egress
// (services/delivery) on slack.out.v1.<org>.<team>.post, each with an id
// derived from the trigger's event id, the action and the target, so a
// trigger delivered twice posts once; the egress's outcomes, and team
// removals, land in the actions' history.
package app

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/crmslack/crmslack/libs/blockkit"
	"github.com/crmslack/crmslack/libs/card"
	"github.com/crmslack/crmslack/libs/topology"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"

	"github.com/crmslack/crmslack/services/workflows/internal/action"
	"github.com/crmslack/crmslack/services/workflows/internal/template"
	"github.com/crmslack/crmslack/services/workflows/internal/valuefmt"
)

// Producer names this service in envelopes and in Origin.service.
const Producer = "workflows"

// Config tunes the service.
type Config struct {
	// Card is the card's configuration: the CRM base URL for "Open in CRM"
	// links of records without a URL of their own.
	Card card.Config
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Fired, when set, counts firings by result (sent, skipped, none).
	Fired func(result string, n int)
}

// Service is the workflows use cases. Safe for concurrent use.
type Service struct {
	cfg     Config
	access  Access
	teams   Teams
	model   Model
	store   Store
	pub     Publisher
	history History
	log     *slog.Logger
}

// New builds the service.
func New(cfg Config, access Access, teams Teams, model Model, store Store, pub Publisher, history History, log *slog.Logger) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Fired == nil {
		cfg.Fired = func(string, int) {}
	}
	return &Service{cfg: cfg, access: access, teams: teams, model: model, store: store, pub: pub, history: history, log: log}
}

// Caller is the CRM user making a call.
type Caller struct {
	User    action.Person
	IsAdmin bool
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Millisecond) }

func invalid(format string, args ...any) error {
	return action.Errorf(action.ErrInvalid, format, args...)
}

func tokenOK(id string) bool {
	_, err := topology.Token(id)
	return err == nil
}

func checkOrg(org string) error {
	if org == "" {
		return invalid("org_id is required")
	}
	if !tokenOK(org) || len(org) > 64 {
		return invalid("org_id %q is not an org id", org)
	}
	return nil
}

func requireAdmin(c Caller, what string) error {
	if c.IsAdmin {
		return nil
	}
	who := c.User.ID
	if who == "" {
		who = "an anonymous caller"
	}
	return action.Errorf(action.ErrDenied, "%s requires a CRM administrator; %s is not one", what, who)
}

// ready refuses work until the actions and the orgs' access are loaded;
// for an event handler that is a temporary error, so the event is retried.
func (s *Service) ready() error {
	if !s.model.Synced() || !s.access.Synced() {
		return action.Errorf(action.ErrUnavailable, "the service is still loading its actions and the orgs' Slack access; try again shortly")
	}
	return nil
}

// checked is a spec that passed every rule, with its template bound.
type checked struct {
	spec  action.Spec
	bound template.Bound
}

// check applies the rules of a saved action, in order: arguments, the
// template against the module's latest schema, the team (active for the
// org, and the caller a member of it), the targets (in the team's
// directory).
func (s *Service) check(ctx context.Context, org string, c Caller, sp action.Spec) (checked, error) {
	sp.RuleID, sp.Module, sp.Team = strings.TrimSpace(sp.RuleID), strings.TrimSpace(sp.Module), strings.TrimSpace(sp.Team)
	switch {
	case sp.RuleID == "" || len(sp.RuleID) > action.MaxRuleID || strings.ContainsAny(sp.RuleID, " \t\r\n"):
		return checked{}, invalid("rule_id is required: at most %d characters, no spaces", action.MaxRuleID)
	case sp.Module == "" || !tokenOK(sp.Module):
		return checked{}, invalid("module is required: the rule's module API name, e.g. Deals")
	case sp.Team == "" || !tokenOK(sp.Team):
		return checked{}, invalid("team_id is required")
	case sp.Kind != action.Users && sp.Kind != action.Channels:
		return checked{}, invalid("target_kind must say whether the targets are users or channels")
	case len(sp.Targets) == 0 && !sp.NotifyOwner:
		return checked{}, invalid("targets are required (or notify_owner)")
	case len(sp.Targets) > action.MaxTargets:
		return checked{}, invalid("an action has at most %d targets, not %d", action.MaxTargets, len(sp.Targets))
	case strings.TrimSpace(sp.Template) == "":
		return checked{}, invalid("template is required: the message to post")
	case c.User.Email == "" || !strings.Contains(c.User.Email, "@"):
		return checked{}, invalid("caller.user.email is required: only teams the caller belongs to can be chosen")
	}
	tpl, err := template.Parse(sp.Template)
	if err != nil {
		return checked{}, invalid("template: %v", err)
	}
	schema, ok := s.model.Schema(org, sp.Module)
	if !ok {
		return checked{}, action.Errorf(action.ErrPrecondition,
			"no field metadata of module %s has been seen for org %s yet: the service learns it from the CRM's record and workflow events", sp.Module, org)
	}
	bound, err := template.Bind(tpl, schema)
	if err != nil {
		return checked{}, invalid("template: %v", err)
	}
	if err := bound.CheckFits(blockkit.MaxSectionText); err != nil {
		return checked{}, invalid("template: %v", err)
	}
	if !s.access.Enabled(org) {
		return checked{}, action.Errorf(action.ErrPrecondition, "the Slack integration of org %s is disabled", org)
	}
	if !s.access.TeamActive(org, sp.Team) {
		return checked{}, action.Errorf(action.ErrPrecondition, "Slack team %s is not one of org %s's active teams", sp.Team, org)
	}
	teams, err := s.teams.MemberTeams(ctx, org, c.User.Email)
	if err != nil {
		return checked{}, err
	}
	if !slices.Contains(teams, sp.Team) {
		return checked{}, action.Errorf(action.ErrDenied, "%s is not a member of Slack team %s: only teams the admin belongs to can be chosen", c.User.Email, sp.Team)
	}
	dir, err := s.teams.Directory(ctx, org, sp.Team)
	if err != nil {
		return checked{}, err
	}
	seen := map[string]bool{}
	targets := make([]string, 0, len(sp.Targets))
	for _, t := range sp.Targets {
		t = strings.TrimSpace(t)
		if seen[t] {
			continue
		}
		seen[t] = true
		switch {
		case sp.Kind == action.Channels && !dir.Channels[t]:
			return checked{}, invalid("channel %q is not a channel of team %s the app can post to (archived channels, and private ones without the app, are left out)", t, sp.Team)
		case sp.Kind == action.Users && !dir.Users[t]:
			return checked{}, invalid("user %q is not an active person of team %s", t, sp.Team)
		}
		targets = append(targets, t)
	}
	sp.Targets = targets
	return checked{spec: sp, bound: bound}, nil
}

// Create adds an action to a rule.
func (s *Service) Create(ctx context.Context, org string, c Caller, sp action.Spec) (*action.Action, error) {
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	if err := requireAdmin(c, "adding a workflow action"); err != nil {
		return nil, err
	}
	if err := s.ready(); err != nil {
		return nil, err
	}
	ck, err := s.check(ctx, org, c, sp)
	if err != nil {
		return nil, err
	}
	if n := len(s.model.Rule(org, ck.spec.RuleID)); n >= action.MaxActionsOfRule {
		return nil, action.Errorf(action.ErrPrecondition, "rule %s already has %d actions, the most a rule has", ck.spec.RuleID, n)
	}
	now := s.now()
	a := &action.Action{ID: action.NewID(), Org: org, Spec: ck.spec, Canonical: ck.bound.Canonical(), Bound: ck.bound,
		CreatedAt: now, UpdatedAt: now, UpdatedBy: c.User}
	rev, err := s.store.CreateAction(ctx, a)
	if err != nil {
		return nil, err
	}
	a.Revision = rev
	s.model.Put(a)
	s.log.InfoContext(ctx, "workflow action created", "org", org, "rule", a.Spec.RuleID, "action", a.ID, "team", a.Spec.Team, "by", c.User.ID)
	return a, nil
}

// Update replaces an action's spec; expected, when not 0, must be its
// current revision. Flags are cleared: the admin chose the targets again.
func (s *Service) Update(ctx context.Context, org string, c Caller, id string, sp action.Spec, expected uint64) (*action.Action, error) {
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	if err := requireAdmin(c, "changing a workflow action"); err != nil {
		return nil, err
	}
	if err := s.ready(); err != nil {
		return nil, err
	}
	cur, err := s.Get(ctx, org, id)
	if err != nil {
		return nil, err
	}
	if expected != 0 && expected != cur.Revision {
		return nil, action.Errorf(action.ErrConflict, "action %s is at revision %d, not %d: read it again", id, cur.Revision, expected)
	}
	ck, err := s.check(ctx, org, c, sp)
	if err != nil {
		return nil, err
	}
	if ck.spec.RuleID != cur.Spec.RuleID {
		return nil, invalid("an action stays on its rule (%s); delete it and add one to rule %s", cur.Spec.RuleID, ck.spec.RuleID)
	}
	a := *cur
	a.Spec, a.Canonical, a.Bound, a.Flags, a.UpdatedAt, a.UpdatedBy = ck.spec, ck.bound.Canonical(), ck.bound, nil, s.now(), c.User
	rev, err := s.store.UpdateAction(ctx, &a, cur.Revision)
	if err != nil {
		return nil, err
	}
	a.Revision = rev
	s.model.Put(&a)
	s.log.InfoContext(ctx, "workflow action updated", "org", org, "rule", a.Spec.RuleID, "action", a.ID, "by", c.User.ID)
	return &a, nil
}

// Delete removes an action.
func (s *Service) Delete(ctx context.Context, org string, c Caller, id string) error {
	if err := checkOrg(org); err != nil {
		return err
	}
	if err := requireAdmin(c, "deleting a workflow action"); err != nil {
		return err
	}
	if err := s.ready(); err != nil {
		return err
	}
	cur, err := s.Get(ctx, org, id)
	if err != nil {
		return err
	}
	if err := s.store.DeleteAction(ctx, org, id); err != nil {
		return err
	}
	s.model.Delete(org, id, cur.Revision)
	s.log.InfoContext(ctx, "workflow action deleted", "org", org, "rule", cur.Spec.RuleID, "action", id, "by", c.User.ID)
	return nil
}

// Get returns one action.
func (s *Service) Get(_ context.Context, org, id string) (*action.Action, error) {
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	if !action.IDOK(id) {
		return nil, invalid("action_id %q is not an action id", id)
	}
	a, ok := s.model.Action(org, id)
	if !ok {
		return nil, action.Errorf(action.ErrNotFound, "org %s has no workflow action %s", org, id)
	}
	return a, nil
}

// Schema returns the latest field metadata of module seen for org: what
// templates are bound against.
func (s *Service) Schema(_ context.Context, org, module string) (*crmv1.ModuleSchema, error) {
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	module = strings.TrimSpace(module)
	if module == "" || !tokenOK(module) {
		return nil, invalid("module is required: a module API name, e.g. Deals")
	}
	sc, ok := s.model.Schema(org, module)
	if !ok {
		return nil, action.Errorf(action.ErrNotFound,
			"no field metadata of module %s has been seen for org %s yet: the service learns it from the CRM's record and workflow events", module, org)
	}
	return sc, nil
}

// List returns an org's actions, of one rule and/or team when given.
func (s *Service) List(_ context.Context, org, rule, team string) ([]*action.Action, error) {
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	var out []*action.Action
	for _, a := range s.model.Org(org) {
		if (rule == "" || a.Spec.RuleID == rule) && (team == "" || a.Spec.Team == team) {
			out = append(out, a)
		}
	}
	return out, nil
}

// History returns an action's or a rule's last executions, newest first.
func (s *Service) History(ctx context.Context, org, actionID, rule string, limit int) ([]action.Execution, error) {
	if err := checkOrg(org); err != nil {
		return nil, err
	}
	switch {
	case (actionID == "") == (rule == ""):
		return nil, invalid("give one of action_id or rule_id")
	case actionID != "" && !action.IDOK(actionID):
		return nil, invalid("action_id %q is not an action id", actionID)
	case limit < 0 || limit > 200:
		return nil, invalid("limit is at most 200")
	case limit == 0:
		limit = 20
	}
	entries, err := s.history.List(ctx, HistoryQuery{Org: org, ActionID: actionID, RuleID: rule, Limit: limit})
	if err != nil {
		return nil, action.Errorf(action.ErrUnavailable, "reading the history: %v", err)
	}
	return action.Fold(entries, limit), nil
}

// SetFormat sets how the org's values are written.
func (s *Service) SetFormat(ctx context.Context, org string, c Caller, locale, currency, zone string) (valuefmt.Format, error) {
	if err := checkOrg(org); err != nil {
		return valuefmt.Format{}, err
	}
	if err := requireAdmin(c, "setting the org's message format"); err != nil {
		return valuefmt.Format{}, err
	}
	f, err := valuefmt.New(locale, currency, zone)
	if err != nil {
		return valuefmt.Format{}, invalid("%v", err)
	}
	if err := s.store.PutFormat(ctx, org, f); err != nil {
		return valuefmt.Format{}, err
	}
	s.model.PutFormat(org, f)
	return f, nil
}

// Format returns how the org's values are written.
func (s *Service) Format(_ context.Context, org string) (valuefmt.Format, error) {
	if err := checkOrg(org); err != nil {
		return valuefmt.Format{}, err
	}
	return s.model.Format(org), nil
}
