package app_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/card"
	"github.com/crmslack/crmslack/libs/testkit"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"

	"github.com/crmslack/crmslack/services/sharing/internal/app"
	"github.com/crmslack/crmslack/services/sharing/internal/share"
)

// The world of these tests: org o1 with teams T1 (Acme) and T2 (Globex),
// Ann in T1 only; T1 has #general and #sales the app is in, #random it is
// not, and two people.
const (
	org     = "o1"
	acme    = "T0ACME0001"
	globex  = "T0GLBX0001"
	ann     = "ann@acme.test"
	annID   = "U0ACMEANN1"
	bobID   = "U0ACMEBOB1"
	general = "C0ACMEGNRL"
	sales   = "C0ACMESALE"
	random  = "C0ACMERAND"
	deals   = "C0GLBXDEAL"
)

type fakeAccess struct {
	mu     sync.Mutex
	orgs   map[string]share.Access
	synced bool
}

func (f *fakeAccess) Org(o string) (share.Access, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, ok := f.orgs[o]
	return a, ok
}

func (f *fakeAccess) Synced() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.synced
}

func (f *fakeAccess) set(o string, a share.Access) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.orgs[o] = a
}

type fakeTeams struct {
	mu      sync.Mutex
	members map[string][]share.Team // email → teams
	dirs    map[string]share.Directory
	users   map[string]app.SlackUser // team/user
	err     error                    // returned by every call when set
}

func (f *fakeTeams) MemberTeams(_ context.Context, _, email string) ([]share.Team, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return f.members[strings.ToLower(email)], nil
}

func (f *fakeTeams) Directory(_ context.Context, _, team string) (share.Directory, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return share.Directory{}, f.err
	}
	d, ok := f.dirs[team]
	if !ok {
		return share.Directory{}, share.Errorf(share.ErrNotFound, "no team %s", team)
	}
	return d, nil
}

func (f *fakeTeams) SlackUser(_ context.Context, team, user string) (app.SlackUser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return app.SlackUser{}, f.err
	}
	u, ok := f.users[team+"/"+user]
	if !ok {
		return app.SlackUser{}, share.Errorf(share.ErrNotFound, "no user %s", user)
	}
	return u, nil
}

type fakeRecords struct {
	recs map[string]*crmv1.Record // module/id
	// inactive are emails the CRM no longer counts as active users.
	inactive map[string]bool
}

func (f *fakeRecords) IsCrmUser(_ context.Context, o, email string) (bool, error) {
	return o == org && !f.inactive[email], nil
}

func (f *fakeRecords) Record(_ context.Context, o, module, id string) (*crmv1.Record, *crmv1.ModuleSchema, error) {
	r, ok := f.recs[module+"/"+id]
	if !ok || o != org {
		return nil, nil, share.Errorf(share.ErrNotFound, "no record %s %s", module, id)
	}
	return r, dealSchema(), nil
}

// fakePublisher keeps what was published, like a stream with a duplicate
// window: an event id seen before is not stored again.
type fakePublisher struct {
	mu      sync.Mutex
	items   []bus.Published
	seen    map[string]bool
	failing bool
}

func (p *fakePublisher) PublishBatch(_ context.Context, items []bus.Published) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failing {
		return context.DeadlineExceeded
	}
	for _, it := range items {
		id := it.Event.GetEnvelope().GetEventId()
		if p.seen[id] {
			continue
		}
		p.seen[id] = true
		p.items = append(p.items, it)
	}
	return nil
}

func (p *fakePublisher) published() []bus.Published {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.items)
}

// memRepo is the share log in memory, with the same semantics as mongorepo.
type memRepo struct {
	mu       sync.Mutex
	shares   map[string]share.Share
	outcomes map[string]share.Outcome
}

func (r *memRepo) Create(_ context.Context, s share.Share) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.shares[s.ID]; ok {
		return false, nil
	}
	r.shares[s.ID] = s
	return true, nil
}

func (r *memRepo) Get(_ context.Context, id string) (share.Share, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.shares[id]
	return s, ok, nil
}

func (r *memRepo) AddOutcomes(_ context.Context, outs ...share.Outcome) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range outs {
		if _, ok := r.outcomes[o.ID]; !ok {
			r.outcomes[o.ID] = o
		}
	}
	return nil
}

func (r *memRepo) List(_ context.Context, q app.ListQuery) ([]share.Share, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []share.Share
	for _, s := range r.shares {
		if s.Org != q.Org || (!q.From.IsZero() && s.SharedAt.Before(q.From)) || (!q.To.IsZero() && !s.SharedAt.Before(q.To)) ||
			(q.SharerID != "" && s.Sharer.ID != q.SharerID) {
			continue
		}
		if !q.AfterAt.IsZero() && !(s.SharedAt.Before(q.AfterAt) || s.SharedAt.Equal(q.AfterAt) && s.ID < q.AfterID) {
			continue
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b share.Share) int {
		if c := b.SharedAt.Compare(a.SharedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	return out[:min(len(out), q.Limit)], nil
}

func (r *memRepo) Outcomes(_ context.Context, ids []string) ([]share.Outcome, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []share.Outcome
	for _, o := range r.outcomes {
		if slices.Contains(ids, o.ShareID) {
			out = append(out, o)
		}
	}
	return out, nil
}

func (r *memRepo) all() []share.Share {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []share.Share
	for _, s := range r.shares {
		out = append(out, s)
	}
	return out
}

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fixture struct {
	svc     *app.Service
	access  *fakeAccess
	teams   *fakeTeams
	records *fakeRecords
	pub     *fakePublisher
	repo    *memRepo
	clock   *clock
	buttons *card.Buttons
}

// button is the signed value of a Share button shown to Ann in #sales.
func (f *fixture) button(ref card.Ref) string { return f.buttonIn(ref, sales) }

// buttonIn is the signed value of a Share button shown to Ann in channel.
func (f *fixture) buttonIn(ref card.Ref, channel string) string {
	b, err := f.buttons.ShareButton(card.Grant{Ref: ref, Team: acme, Channel: channel, User: annID})
	if err != nil {
		panic(err)
	}
	return b.Value
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{
		access: &fakeAccess{synced: true, orgs: map[string]share.Access{org: {Enabled: true, Teams: []string{acme, globex}}}},
		teams: &fakeTeams{
			members: map[string][]share.Team{ann: {{ID: acme, Name: "Acme Corp", Domain: "acme"}}},
			dirs: map[string]share.Directory{
				acme: {Team: acme,
					Channels: []share.Channel{{ID: general, Name: "general", CanPost: true}, {ID: sales, Name: "sales", CanPost: true}, {ID: random, Name: "random"}},
					Users:    []share.User{{ID: annID, Name: "ann", RealName: "Ann Archer", Email: ann}, {ID: bobID, Name: "bob", RealName: "Bob"}},
				},
				globex: {Team: globex, Channels: []share.Channel{{ID: deals, Name: "deals", CanPost: true}}},
			},
			users: map[string]app.SlackUser{acme + "/" + annID: {Email: ann, RealName: "Ann Archer"}, acme + "/" + bobID: {Email: "bob@acme.test", Deleted: true}},
		},
		records: &fakeRecords{recs: map[string]*crmv1.Record{"Deals/d1": deal()}},
		pub:     &fakePublisher{seen: map[string]bool{}},
		repo:    &memRepo{shares: map[string]share.Share{}, outcomes: map[string]share.Outcome{}},
		clock:   &clock{t: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)},
	}
	var err error
	if f.buttons, err = card.NewButtons(f.clock.now, []byte(strings.Repeat("k", 32))); err != nil {
		t.Fatal(err)
	}
	f.svc = app.New(app.Config{CRMBaseURL: "https://crm.example", Now: f.clock.now, Buttons: f.buttons}, f.access, f.teams, f.records, f.pub, f.repo, testkit.Logger(t))
	return f
}

func dealSchema() *crmv1.ModuleSchema {
	return &crmv1.ModuleSchema{
		Module: "Deals", SingularLabel: "Deal", PluralLabel: "Deals", DisplayField: "Deal_Name", HasCardView: true,
		Fields: []*crmv1.FieldMeta{
			{ApiName: "Deal_Name", Label: "Deal Name", Type: crmv1.FieldType_FIELD_TYPE_SINGLE_LINE},
			{ApiName: "Amount", Label: "Amount", Type: crmv1.FieldType_FIELD_TYPE_CURRENCY, CurrencyCode: "EUR"},
			{ApiName: "Stage", Label: "Stage", Type: crmv1.FieldType_FIELD_TYPE_PICKLIST},
		},
	}
}

func deal() *crmv1.Record {
	return &crmv1.Record{Module: "Deals", Id: "d1", Version: 1, Fields: map[string]*crmv1.FieldValue{
		"Deal_Name": {Kind: &crmv1.FieldValue_Text{Text: "Q4 licences"}},
		"Amount":    {Kind: &crmv1.FieldValue_Number{Number: 50000}},
		"Stage":     {Kind: &crmv1.FieldValue_Text{Text: "Negotiation"}},
	}}
}
