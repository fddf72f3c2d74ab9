package app

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/bus"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"

	"github.com/crmslack/crmslack/services/workflows/internal/action"
	"github.com/crmslack/crmslack/services/workflows/internal/readmodel"
	"github.com/crmslack/crmslack/services/workflows/internal/valuefmt"
)

type fakeAccess struct {
	enabled bool
	teams   map[string]bool
}

func (a *fakeAccess) Enabled(string) bool            { return a.enabled }
func (a *fakeAccess) TeamActive(_, team string) bool { return a.teams[team] }
func (a *fakeAccess) Synced() bool                   { return true }

type fakeTeams struct {
	member []string
	dir    Directory
}

func (f *fakeTeams) MemberTeams(context.Context, string, string) ([]string, error) {
	return f.member, nil
}
func (f *fakeTeams) Directory(context.Context, string, string) (Directory, error) { return f.dir, nil }

type fakeStore struct {
	mu      sync.Mutex
	rev     uint64
	deleted []string
}

func (s *fakeStore) next() uint64 { s.mu.Lock(); defer s.mu.Unlock(); s.rev++; return s.rev }
func (s *fakeStore) CreateAction(context.Context, *action.Action) (uint64, error) {
	return s.next(), nil
}
func (s *fakeStore) UpdateAction(_ context.Context, _ *action.Action, _ uint64) (uint64, error) {
	return s.next(), nil
}
func (s *fakeStore) DeleteAction(_ context.Context, _, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleted = append(s.deleted, id)
	return nil
}
func (s *fakeStore) PutSchema(context.Context, string, *crmv1.ModuleSchema) error { return nil }
func (s *fakeStore) PutFormat(context.Context, string, valuefmt.Format) error     { return nil }

type fakePub struct {
	mu    sync.Mutex
	items []bus.Published
}

func (p *fakePub) PublishBatch(_ context.Context, items []bus.Published) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.items = append(p.items, items...)
	return nil
}

type fakeHistory struct {
	mu      sync.Mutex
	entries []action.Entry
}

func (h *fakeHistory) Record(_ context.Context, es ...action.Entry) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.entries = append(h.entries, es...)
	return nil
}
func (h *fakeHistory) List(context.Context, HistoryQuery) ([]action.Entry, error) {
	return h.entries, nil
}

type fixture struct {
	svc     *Service
	access  *fakeAccess
	teams   *fakeTeams
	model   *readmodel.Model
	store   *fakeStore
	pub     *fakePub
	history *fakeHistory
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{
		access: &fakeAccess{enabled: true, teams: map[string]bool{"T1": true}},
		teams:  &fakeTeams{member: []string{"T1"}, dir: Directory{Channels: map[string]bool{"C1": true}, Users: map[string]bool{"U1": true}}},
		model:  readmodel.New(), store: &fakeStore{}, pub: &fakePub{}, history: &fakeHistory{},
	}
	f.model.MarkSynced()
	f.model.PutSchema("o1", schema())
	now := func() time.Time { return time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC) }
	f.svc = New(Config{Now: now}, f.access, f.teams, f.model, f.store, f.pub, f.history, slog.New(slog.DiscardHandler))
	return f
}

func schema() *crmv1.ModuleSchema {
	return &crmv1.ModuleSchema{Module: "Deals", SingularLabel: "Deal", PluralLabel: "Deals", DisplayField: "Deal_Name",
		Fields: []*crmv1.FieldMeta{
			{ApiName: "Deal_Name", Label: "Deal Name", Type: crmv1.FieldType_FIELD_TYPE_SINGLE_LINE},
			{ApiName: "Amount", Label: "Amount", Type: crmv1.FieldType_FIELD_TYPE_CURRENCY, CurrencyCode: "EUR"},
		}}
}

var admin = Caller{User: action.Person{ID: "crm-1", Email: "ada@acme.example"}, IsAdmin: true}

func readmodelNotSynced() *readmodel.Model { return readmodel.New() }
