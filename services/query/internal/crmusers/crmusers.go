// Package crmusers is the in-memory directory of each org's CRM users, kept
// current from CrmUserUpserted and CrmUserDeactivated events, that answers
// the one question the query service asks: is there an active CRM user in
// this org with this email?
//
// Versions work as in the record projection: a user keeps the highest
// version seen, and an event whose version is not above it changes nothing,
// so duplicates and out-of-order deliveries are harmless. A deactivation is
// kept (with its version) so an older upsert arriving later cannot
// reactivate the user; an upsert with a higher version can.
//
// Emails match without regard to case or surrounding spaces. Two users of
// one org may share an email (a renamed account, an import); the lookup
// then answers with an active one, the lowest id first.
package crmusers

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

// ErrInvalidEvent: the event lacks its org or user id; retrying cannot help.
var ErrInvalidEvent = errors.New("invalid CRM user event")

// User is what the directory keeps of an active CRM user.
type User struct {
	ID, Email, FullName string
	IsAdmin             bool
}

type state struct {
	User
	version int64
	active  bool
	email   string // folded
}

type org struct {
	byID    map[string]*state
	byEmail map[string][]string // folded email → user ids, sorted
}

// Directory is safe for concurrent use. The zero value is not usable; call New.
type Directory struct {
	mu   sync.RWMutex
	orgs map[string]*org
}

// New returns an empty directory.
func New() *Directory { return &Directory{orgs: map[string]*org{}} }

// Fold is how emails are compared.
func Fold(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

func (d *Directory) org(id string) *org {
	o := d.orgs[id]
	if o == nil {
		o = &org{byID: map[string]*state{}, byEmail: map[string][]string{}}
		d.orgs[id] = o
	}
	return o
}

// ApplyUpserted records the user unless a version at or above this one was
// seen. It reports whether anything changed.
func (d *Directory) ApplyUpserted(ev *crmv1.CrmUserUpserted) (bool, error) {
	orgID, u := ev.GetEnvelope().GetOrgId(), ev.GetUser()
	if orgID == "" || u.GetId() == "" {
		return false, fmt.Errorf("user upserted without org or user id: %w", ErrInvalidEvent)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.org(orgID).set(&state{
		User:    User{ID: u.GetId(), Email: strings.TrimSpace(u.GetEmail()), FullName: u.GetFullName(), IsAdmin: u.GetIsAdmin()},
		version: u.GetVersion(),
		active:  u.GetActive(),
		email:   Fold(u.GetEmail()),
	}), nil
}

// ApplyDeactivated marks the user inactive unless a version at or above
// this one was seen. It reports whether anything changed.
func (d *Directory) ApplyDeactivated(ev *crmv1.CrmUserDeactivated) (bool, error) {
	orgID, id := ev.GetEnvelope().GetOrgId(), ev.GetUserId()
	if orgID == "" || id == "" {
		return false, fmt.Errorf("user deactivated without org or user id: %w", ErrInvalidEvent)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	o := d.org(orgID)
	s := &state{User: User{ID: id, Email: strings.TrimSpace(ev.GetEmail())}, version: ev.GetVersion(), email: Fold(ev.GetEmail())}
	if old, ok := o.byID[id]; ok {
		s.User = old.User // keep the name; the event may omit the email
		s.email = old.email
	}
	return o.set(s), nil
}

// set stores s unless the user has a version at or above it. The caller
// holds the write lock.
func (o *org) set(s *state) bool {
	old, ok := o.byID[s.ID]
	if ok && s.version <= old.version {
		return false
	}
	if ok {
		o.unindex(old)
	}
	o.byID[s.ID] = s
	if s.email != "" {
		ids := o.byEmail[s.email]
		i, _ := slices.BinarySearch(ids, s.ID)
		o.byEmail[s.email] = slices.Insert(ids, i, s.ID)
	}
	return true
}

func (o *org) unindex(s *state) {
	ids := o.byEmail[s.email]
	if i, found := slices.BinarySearch(ids, s.ID); found {
		ids = slices.Delete(ids, i, i+1)
	}
	if len(ids) == 0 {
		delete(o.byEmail, s.email)
	} else {
		o.byEmail[s.email] = ids
	}
}

// Lookup returns the org's active CRM user with this email.
func (d *Directory) Lookup(orgID, email string) (User, bool) {
	e := Fold(email)
	if e == "" {
		return User{}, false
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	o := d.orgs[orgID]
	if o == nil {
		return User{}, false
	}
	for _, id := range o.byEmail[e] {
		if s := o.byID[id]; s.active {
			return s.User, true
		}
	}
	return User{}, false
}

// Count returns how many users (active or not) the directory knows.
func (d *Directory) Count() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	n := 0
	for _, o := range d.orgs {
		n += len(o.byID)
	}
	return n
}
