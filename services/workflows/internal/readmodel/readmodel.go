// Package readmodel holds every action, the latest schema of each module
// and each org's format in memory, indexed by org and rule, so that a
// firing finds its actions without a database read (FerretDB scans whole
// collections). The store's watcher fills it at start and keeps it
// current; a replica's own writes are applied at once too. Entries carry
// the store's revision and an older one never replaces a newer one.
package readmodel

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"

	"github.com/crmslack/crmslack/services/workflows/internal/action"
	"github.com/crmslack/crmslack/services/workflows/internal/valuefmt"
)

type org struct {
	actions map[string]*action.Action
	// rules indexes actions by rule id, in creation order.
	rules   map[string][]*action.Action
	schemas map[string]*crmv1.ModuleSchema
	format  *valuefmt.Format
	// deleted remembers the revision an action had when deleted here, so
	// a late watch update of that revision cannot bring it back.
	deleted map[string]uint64
}

// Model is safe for concurrent use.
type Model struct {
	mu     sync.RWMutex
	orgs   map[string]*org
	synced atomic.Bool
}

// New returns an empty model.
func New() *Model { return &Model{orgs: map[string]*org{}} }

func (m *Model) org(id string) *org {
	o, ok := m.orgs[id]
	if !ok {
		o = &org{actions: map[string]*action.Action{}, rules: map[string][]*action.Action{}, schemas: map[string]*crmv1.ModuleSchema{}, deleted: map[string]uint64{}}
		m.orgs[id] = o
	}
	return o
}

// Synced reports whether the store's values present at start are in.
func (m *Model) Synced() bool { return m.synced.Load() }

// MarkSynced says they are.
func (m *Model) MarkSynced() { m.synced.Store(true) }

// Rule returns the actions of a rule. The slice is the caller's; the
// actions are shared and must not be changed.
func (m *Model) Rule(orgID, rule string) []*action.Action {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if o, ok := m.orgs[orgID]; ok {
		return slices.Clone(o.rules[rule])
	}
	return nil
}

// Action returns one action.
func (m *Model) Action(orgID, id string) (*action.Action, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if o, ok := m.orgs[orgID]; ok {
		a, ok := o.actions[id]
		return a, ok
	}
	return nil, false
}

// Org returns an org's actions by rule, then creation.
func (m *Model) Org(orgID string) []*action.Action {
	m.mu.RLock()
	defer m.mu.RUnlock()
	o, ok := m.orgs[orgID]
	if !ok {
		return nil
	}
	out := make([]*action.Action, 0, len(o.actions))
	for _, a := range o.actions {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b *action.Action) int {
		if c := strings.Compare(a.Spec.RuleID, b.Spec.RuleID); c != 0 {
			return c
		}
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// Put adds or replaces an action unless the model has a newer revision.
func (m *Model) Put(a *action.Action) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o := m.org(a.Org)
	if rev, ok := o.deleted[a.ID]; ok && a.Revision <= rev {
		return
	}
	if cur, ok := o.actions[a.ID]; ok {
		if cur.Revision >= a.Revision {
			return
		}
		o.unindex(cur)
	}
	o.actions[a.ID] = a
	o.rules[a.Spec.RuleID] = append(o.rules[a.Spec.RuleID], a)
	slices.SortStableFunc(o.rules[a.Spec.RuleID], func(x, y *action.Action) int { return x.CreatedAt.Compare(y.CreatedAt) })
}

// Delete removes an action known at revision rev or older.
func (m *Model) Delete(orgID, id string, rev uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o := m.org(orgID)
	if cur, ok := o.actions[id]; ok {
		if cur.Revision > rev {
			return
		}
		o.unindex(cur)
		delete(o.actions, id)
	}
	if rev > o.deleted[id] {
		o.deleted[id] = rev
	}
}

func (o *org) unindex(a *action.Action) {
	rs := slices.DeleteFunc(o.rules[a.Spec.RuleID], func(x *action.Action) bool { return x.ID == a.ID })
	if len(rs) == 0 {
		delete(o.rules, a.Spec.RuleID)
		return
	}
	o.rules[a.Spec.RuleID] = rs
}

// Schema returns the latest schema seen of a module.
func (m *Model) Schema(orgID, module string) (*crmv1.ModuleSchema, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if o, ok := m.orgs[orgID]; ok {
		s, ok := o.schemas[module]
		return s, ok
	}
	return nil, false
}

// PutSchema keeps a module's schema.
func (m *Model) PutSchema(orgID string, s *crmv1.ModuleSchema) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.org(orgID).schemas[s.GetModule()] = s
}

// Format returns the org's format, the default when it set none.
func (m *Model) Format(orgID string) valuefmt.Format {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if o, ok := m.orgs[orgID]; ok && o.format != nil {
		return *o.format
	}
	return valuefmt.Default()
}

// PutFormat keeps the org's format.
func (m *Model) PutFormat(orgID string, f valuefmt.Format) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.org(orgID).format = &f
}
