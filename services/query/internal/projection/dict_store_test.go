package projection

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	"github.com/crmslack/crmslack/services/query/internal/filter"
	"github.com/crmslack/crmslack/services/query/internal/slash"
)

// accounts is a small module: a display name, a company, a phone and a
// multi-select list.
var accounts = &crmv1.ModuleSchema{Module: "Accounts", DisplayField: "Name", Fields: []*crmv1.FieldMeta{
	{ApiName: "Name", Label: "Name", Type: crmv1.FieldType_FIELD_TYPE_SINGLE_LINE},
	{ApiName: "Company", Label: "Company", Type: crmv1.FieldType_FIELD_TYPE_SINGLE_LINE},
	{ApiName: "Phone", Label: "Phone", Type: crmv1.FieldType_FIELD_TYPE_PHONE},
	{ApiName: "Tags", Label: "Tags", Type: crmv1.FieldType_FIELD_TYPE_MULTI_PICKLIST},
}}

func account(id string, v int64, name, company string) *crmv1.RecordUpserted {
	return &crmv1.RecordUpserted{Envelope: &commonv1.Envelope{OrgId: "o"}, Schema: accounts, Record: &crmv1.Record{
		Module: "Accounts", Id: id, Version: v, Fields: map[string]*crmv1.FieldValue{
			"Name":    {Kind: &crmv1.FieldValue_Text{Text: name}},
			"Company": {Kind: &crmv1.FieldValue_Text{Text: company}},
		},
	}}
}

// find parses, binds against accounts and searches, and returns the ids
// found, in order, checking the total against them.
func find(t testing.TB, s *Store, text string) []string {
	t.Helper()
	cmd, err := slash.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	q, err := filter.Bind(cmd, accounts)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Search("o", q, 1000)
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, r := range res.Records {
		ids = append(ids, r.GetId())
	}
	if res.Total != len(ids) {
		t.Fatalf("%s: total %d for %v", text, res.Total, ids)
	}
	return ids
}

// eachWay runs a test on a store with the production settings and on
// stores that rebuild their dicts as soon as they can and always scan or
// always probe.
func eachWay(t *testing.T, test func(t *testing.T, s *Store)) {
	t.Helper()
	for name, s := range map[string]func() *Store{
		"production": New,
		"eager scan": func() *Store { return newStore(0, planScan) },
		"eager probe": func() *Store {
			return newStore(0, planProbe)
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, s())
		})
	}
}

// TestUpdatesAndDeletesLeaveNoStaleHits: a value replaced, removed with its
// record, or moved by a delete's row swap is found under its new state
// only, and a value that comes back is found again.
func TestUpdatesAndDeletesLeaveNoStaleHits(t *testing.T) {
	t.Parallel()
	eachWay(t, func(t *testing.T, s *Store) {
		apply := func(ev *crmv1.RecordUpserted) {
			t.Helper()
			if ok, err := s.ApplyUpserted(ev); !ok || err != nil {
				t.Fatalf("upsert %s: %v %v", ev.GetRecord().GetId(), ok, err)
			}
		}
		del := func(id string, v int64) {
			t.Helper()
			if ok, err := s.ApplyDeleted(&crmv1.RecordDeleted{Envelope: &commonv1.Envelope{OrgId: "o"}, Module: "Accounts", RecordId: id, Version: v}); !ok || err != nil {
				t.Fatalf("delete %s: %v %v", id, ok, err)
			}
		}
		want := func(text string, ids ...string) {
			t.Helper()
			if got := find(t, s, text); !slices.Equal(got, append([]string{}, ids...)) {
				t.Fatalf("%s: %v, want %v", text, got, ids)
			}
		}
		apply(account("a1", 1, "Ann", "Zylker"))
		apply(account("a2", 1, "Bob", "Zylker"))
		apply(account("a3", 1, "Cy", "Acme"))
		want("accounts [company] contains [zyl]", "a1", "a2")
		want("accounts zylker", "a1", "a2")

		apply(account("a1", 2, "Ann", "Globex")) // the value changes: Zylker stays, held by a2
		want("accounts [company] contains [zyl]", "a2")
		want("accounts [company] is [globex]", "a1")
		want("accounts zylker", "a2")

		apply(account("a2", 2, "Bob", "Initech")) // now no row holds Zylker: dead
		want("accounts [company] contains [zyl]")
		want("accounts zylker")
		want("accounts [company] starts with [zylker]")

		del("a1", 3) // a3, the last row, moves into a1's place
		want("accounts [company] is [globex]")
		want("accounts [company] is [acme]", "a3")
		want("accounts cy", "a3")
		want("accounts [name] ends with [y]", "a3")

		apply(account("a4", 1, "Dee", "Zylker")) // a dead value comes back
		want("accounts [company] contains [zyl]", "a4")
		want("accounts zylker", "a4")
		apply(account("a1", 4, "Ann", "Zylker")) // so does a deleted record
		want("accounts [company] ends with [ker]", "a1", "a4")
		want("accounts", "a1", "a2", "a3", "a4")
	})
}

// TestCompactionKeepsResults: churn enough to rebuild the dicts many times
// over (past the production threshold too), checking searches against the
// model throughout, and the arenas' size against their live values.
func TestCompactionKeepsResults(t *testing.T) {
	t.Parallel()
	eachWay(t, func(t *testing.T, s *Store) {
		m := newRefStore()
		rng := rand.New(rand.NewPCG(7, 8))
		queries := []string{
			"accounts [company] contains [zyl]", "accounts [company] starts with [acme]", "accounts [name] ends with [7]",
			"accounts [company] starts with [zylker 3]", "accounts [company] ends with [x 17]", "accounts zylker", "accounts name 1", "accounts",
		}
		for op := range 4000 {
			id := fmt.Sprint("a", rng.IntN(300))
			company := fmt.Sprintf("%s %d %s %d", []string{"Zylker", "Acme", "Globex"}[rng.IntN(3)], rng.IntN(10), strings.Repeat("x", rng.IntN(60)), op)
			ev := account(id, int64(op+1), fmt.Sprint("Name ", rng.IntN(1000)), company)
			if rng.IntN(6) == 0 {
				m.delete(id, int64(op+1), 0)
				if _, err := s.ApplyDeleted(&crmv1.RecordDeleted{Envelope: &commonv1.Envelope{OrgId: "o"}, Module: "Accounts", RecordId: id, Version: int64(op + 1)}); err != nil {
					t.Fatal(err)
				}
			} else {
				m.upsert(ev.GetRecord(), accounts)
				if _, err := s.ApplyUpserted(ev); err != nil {
					t.Fatal(err)
				}
			}
			if op%250 != 249 {
				continue
			}
			for _, text := range queries {
				cmd, _ := slash.Parse(text)
				q, err := filter.Bind(cmd, accounts)
				if err != nil {
					t.Fatal(err)
				}
				want, _ := m.search(q, 1000)
				if got := find(t, s, text); !slices.Equal(got, append([]string{}, want...)) {
					t.Fatalf("op %d, %s: %v, want %v", op, text, got, want)
				}
			}
		}
		// Some 180 kB of companies went in; with no rebuild the Company
		// dict would hold them all.
		tab := s.table("o", "Accounts", false)
		company := &tab.cols[tab.slots["Company"]].texts
		if len(company.data) > 100_000 {
			t.Errorf("the Company dict holds %d bytes for %d live ones", len(company.data), len(company.data)-company.dead)
		}
		for _, c := range tab.cols {
			for _, d := range []*dict{&c.texts, &c.words} {
				if d.wasteful(tab.minDead) {
					t.Errorf("a dict was left holding %d dead bytes for %d live ones", d.dead, len(d.data)-d.dead)
				}
			}
		}
	})
}

// TestFoldingEdgeCases: values and needles go through filter.Fold, which
// lower-cases rune by rune (strings.ToLower: no special casing), so "ß"
// stays itself and is not "ss", the dotted capital I is a plain i (not i
// and a combining dot), the Kelvin sign is k, a capital sigma is σ even at
// the end of a word, and a decomposed é is not a composed one. The
// projection finds what filter's own matching says, and these are pinned.
func TestFoldingEdgeCases(t *testing.T) {
	t.Parallel()
	names := []string{"Straße", "STRASSE", "İstanbul", "Istanbul", "\u212aelvin", "Kelvin", "ΣΟΦΟΣ", "σοφος", "ǅemal", "Café", "Cafe\u0301"}
	for _, tc := range []struct {
		query string
		want  []string // names found; filter's own matching must agree
	}{
		{"accounts [name] contains [ß]", []string{"Straße"}},
		{"accounts [name] contains [ss]", []string{"STRASSE"}},
		{"accounts [name] is [straße]", []string{"Straße"}},
		{"accounts [name] starts with [İst]", []string{"Istanbul", "İstanbul"}},
		{"accounts [name] starts with [ist]", []string{"Istanbul", "İstanbul"}},
		{"accounts [name] contains [kelvin]", []string{"\u212aelvin", "Kelvin"}},
		{"accounts [name] ends with [ος]", []string{"σοφος"}},
		{"accounts [name] ends with [ΟΣ]", []string{"ΣΟΦΟΣ"}},
		{"accounts [name] ends with [οσ]", []string{"ΣΟΦΟΣ"}},
		{"accounts [name] starts with [ǆ]", []string{"ǅemal"}},
		{"accounts [name] is [café]", []string{"Café"}},
		{"accounts [name] contains [e\u0301]", []string{"Cafe\u0301"}},
		{"accounts straße", []string{"Straße"}},
		{"accounts i̇stanbul", nil}, // i and a combining dot: no name has it
		{"accounts istanbul", []string{"Istanbul", "İstanbul"}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			t.Parallel()
			s := New()
			for i, name := range names {
				if _, err := s.ApplyUpserted(account(fmt.Sprint("n", i), 1, name, "")); err != nil {
					t.Fatal(err)
				}
			}
			cmd, err := slash.Parse(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			q, err := filter.Bind(cmd, accounts)
			if err != nil {
				t.Fatal(err)
			}
			var byFilter []string
			for _, name := range names {
				ok := true
				for _, f := range q.Fields {
					ok = ok && slices.ContainsFunc(f.Tests, func(test filter.Test) bool { return test.MatchText(filter.Fold(f.Type, name)) })
				}
				for _, w := range q.Words {
					ok = ok && strings.Contains(strings.ToLower(name), w)
				}
				if ok {
					byFilter = append(byFilter, name)
				}
			}
			res, err := s.Search("o", q, 100)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range res.Records {
				got = append(got, r.GetFields()["Name"].GetText())
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tc.want))
			slices.Sort(byFilter)
			if !slices.Equal(got, want) || !slices.Equal(byFilter, want) {
				t.Fatalf("found %q, filter says %q, want %q", got, byFilter, want)
			}
		})
	}
}

// TestPhonesAndTags: phone fields compare on digits (global search sees
// them as typed), and a multi-select list matches value by value.
func TestPhonesAndTags(t *testing.T) {
	t.Parallel()
	eachWay(t, func(t *testing.T, s *Store) {
		for i, rec := range []map[string]*crmv1.FieldValue{
			{"Phone": {Kind: &crmv1.FieldValue_Text{Text: "(555) 010-1"}}, "Tags": {Kind: &crmv1.FieldValue_Multi{Multi: &crmv1.StringList{Values: []string{"CRM", "Chat"}}}}},
			{"Phone": {Kind: &crmv1.FieldValue_Text{Text: "555-0101"}}, "Tags": {Kind: &crmv1.FieldValue_Multi{Multi: &crmv1.StringList{Values: []string{"Chat"}}}}},
			{"Phone": {Kind: &crmv1.FieldValue_Text{Text: "+1 234"}}, "Tags": {Kind: &crmv1.FieldValue_Text{Text: "CRM"}}},
		} {
			rec["Name"] = &crmv1.FieldValue{Kind: &crmv1.FieldValue_Text{Text: fmt.Sprint("N", i)}}
			ev := &crmv1.RecordUpserted{Envelope: &commonv1.Envelope{OrgId: "o"}, Schema: accounts, Record: &crmv1.Record{Module: "Accounts", Id: fmt.Sprint("p", i), Version: 1, Fields: rec}}
			if _, err := s.ApplyUpserted(ev); err != nil {
				t.Fatal(err)
			}
		}
		for text, want := range map[string][]string{
			"accounts [phone] starts with [555]":           {"p0", "p1"},
			"accounts [phone] is [(555) 0101]":             {"p0", "p1"},
			"accounts [phone] ends with [1234]":            {"p2"},
			"accounts [phone] contains [50]":               {"p0", "p1"},
			"accounts 555-0101":                            {"p1"},
			"accounts (555)":                               {"p0"},
			"accounts [tags] is [crm]":                     {"p0", "p2"},
			"accounts [tags] is [chat]":                    {"p0", "p1"},
			"accounts [tags] starts with [c]":              {"p0", "p1", "p2"},
			"accounts crm":                                 {"p0", "p2"},
			"accounts [tags] is [crm] [phone] = [5550101]": {"p0"},
		} {
			if got := find(t, s, text); !slices.Equal(got, want) {
				t.Errorf("%s: %v, want %v", text, got, want)
			}
		}
	})
}

// TestWordHoldingNUL: values are joined with NUL for global search, as they
// always were, so a word holding NUL may span two of them, in the order
// the schema lists the fields.
func TestWordHoldingNUL(t *testing.T) {
	t.Parallel()
	s := New()
	if _, err := s.ApplyUpserted(account("a1", 1, "Ann", "Zylker")); err != nil {
		t.Fatal(err)
	}
	for word, want := range map[string]int{"ann\x00zyl": 1, "ann\x00": 1, "\x00zylker": 1, "zylker\x00ann": 0, "ann\x00\x00zylker": 0} {
		res, err := s.Search("o", &filter.Query{Kind: filter.KindGlobalSearch, Module: "Accounts", Words: []string{word}}, 10)
		if err != nil || res.Total != want {
			t.Errorf("%q: %d found (%v), want %d", word, res.Total, err, want)
		}
	}
}

// TestConcurrentChurnAndSearch: writers churn values (rebuilding dicts all
// along) while readers search; -race checks the locking, and every answer
// must be whole.
func TestConcurrentChurnAndSearch(t *testing.T) {
	t.Parallel()
	s := newStore(0, planCheaper)
	for i := range 50 {
		if _, err := s.ApplyUpserted(account(fmt.Sprint("keep", i), 1, "Keeper", "Zylker")); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := range 500 {
				id := fmt.Sprintf("churn-%d-%d", w, i%20)
				ev := account(id, int64(i+1), "Churner", fmt.Sprintf("Zylker %d %s", i, strings.Repeat("y", i%40)))
				if _, err := s.ApplyUpserted(ev); err != nil {
					t.Error(err)
				}
				if i%9 == 0 {
					if _, err := s.ApplyDeleted(&crmv1.RecordDeleted{Envelope: &commonv1.Envelope{OrgId: "o"}, Module: "Accounts", RecordId: id, Version: int64(i + 1)}); err != nil {
						t.Error(err)
					}
				}
			}
		})
		wg.Go(func() {
			for range 300 {
				for _, text := range []string{"accounts [company] contains [zyl]", "accounts keeper zylker", "accounts [name] is [keeper]"} {
					cmd, _ := slash.Parse(text)
					q, _ := filter.Bind(cmd, accounts)
					res, err := s.Search("o", q, 10)
					if err != nil || res.Total < 50 || len(res.Records) != 10 {
						t.Errorf("%s: %d records, total %d, %v", text, len(res.Records), res.Total, err)
					}
				}
			}
		})
	}
	wg.Wait()
	if got := find(t, s, "accounts [name] is [keeper]"); len(got) != 50 {
		t.Fatalf("after churn: %d keepers", len(got))
	}
}
