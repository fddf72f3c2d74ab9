package projection_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	"github.com/crmslack/crmslack/services/query/internal/filter"
	"github.com/crmslack/crmslack/services/query/internal/projection"
	"github.com/crmslack/crmslack/services/query/internal/seedset"
	"github.com/crmslack/crmslack/services/query/internal/slash"
)

func upserted(org string, rec *crmv1.Record, schema *crmv1.ModuleSchema) *crmv1.RecordUpserted {
	return &crmv1.RecordUpserted{Envelope: &commonv1.Envelope{OrgId: org}, Record: rec, Schema: schema}
}

func deleted(org, module, id string, version int64) *crmv1.RecordDeleted {
	return &crmv1.RecordDeleted{Envelope: &commonv1.Envelope{OrgId: org}, Module: module, RecordId: id, Version: version}
}

// seeded returns a store holding every seed record.
func seeded(tb testing.TB) *projection.Store {
	tb.Helper()
	s := projection.New()
	schemas := seedset.Schemas()
	for module, recs := range seedset.Records() {
		for _, r := range recs {
			if _, err := s.ApplyUpserted(upserted(seedset.Org, r, schemas[module])); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return s
}

// run parses, binds against the stored schema and searches, as the service will.
func run(tb testing.TB, s *projection.Store, org, text string) (projection.Result, error) {
	tb.Helper()
	cmd, err := slash.Parse(text)
	if err != nil {
		return projection.Result{}, err
	}
	schema, ok := s.Schema(org, cmd.Module)
	if !ok {
		return projection.Result{}, fmt.Errorf("no schema for %s", cmd.Module)
	}
	q, err := filter.Bind(cmd, schema)
	if err != nil {
		return projection.Result{}, err
	}
	return s.Search(org, q, 10)
}

func ids(res projection.Result) []string {
	out := make([]string, len(res.Records))
	for i, r := range res.Records {
		out[i] = r.GetId()
	}
	return out
}

func TestSeedExamples(t *testing.T) {
	t.Parallel()
	s := seeded(t)
	for _, ex := range seedset.Examples() {
		t.Run(ex.Text, func(t *testing.T) {
			t.Parallel()
			res, err := run(t, s, seedset.Org, ex.Text)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(res); !slices.Equal(got, ex.Want) || res.Total != ex.Total {
				t.Fatalf("got %v (total %d), want %v (total %d)", got, res.Total, ex.Want, ex.Total)
			}
		})
	}
}

// TestVariants: the spellings the language allows find the same records.
func TestVariants(t *testing.T) {
	t.Parallel()
	s := seeded(t)
	tests := []struct {
		text string
		want []string
	}{
		{"contacts [first name] commence par [JAMES]", []string{"contact-01", "contact-07", "contact-02"}},
		{"contacts [Last Name] se termine par [Butler]", []string{"contact-01", "contact-03", "contact-05"}},
		{"accounts [email] contient [ONC]", []string{"account-03", "account-01", "account-04"}},
		{"leads [last name] est [Watson]", []string{"lead-07", "lead-02", "lead-01"}},
		{"deals [amount] &lt; [20000]", []string{"deal-01", "deal-05", "deal-03"}},
		{"deals [discount] &gt;=[15]", []string{"deal-02", "deal-04"}},
		{"leads [age] <=[40]", []string{"lead-06", "lead-02", "lead-10", "lead-01", "lead-05", "lead-08"}},
		{"contacts [email opt out] = [vrai]", []string{"contact-01", "contact-03"}},
		{"contacts [email opt out] is [false]", []string{"contact-04", "contact-02", "contact-05"}},
		{"leads [phone] starts with [(555)]", []string{"lead-06", "lead-11", "lead-01", "lead-08"}},
		{"leads [interests] is [chat]", []string{"lead-01"}},
		{"leads [lead owner] contains [ada]", []string{"lead-01"}},
		{"contacts [account name] is [zylker]", []string{"contact-04", "contact-01", "contact-07", "contact-02", "contact-03", "contact-05", "contact-06"}},
		{"leads peter zylker", []string{"lead-04", "lead-01"}},
		{"leads [annual revenue] = [50000, 50000.5]", []string{"lead-01", "lead-08"}},
		{"leads [last name] starts with [zzz]", nil},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			t.Parallel()
			res, err := run(t, s, seedset.Org, tt.text)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(res); !slices.Equal(got, tt.want) || res.Total != len(tt.want) {
				t.Fatalf("got %v (total %d), want %v", got, res.Total, tt.want)
			}
		})
	}
}

func TestOrgsAreSeparate(t *testing.T) {
	t.Parallel()
	s := seeded(t)
	if _, err := run(t, s, "another-org", "leads"); err == nil {
		t.Fatal("another org sees the seed's Leads schema")
	}
	q, err := filter.Bind(slash.Command{Kind: slash.KindList, Module: "Leads"}, seedset.Schemas()["Leads"])
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Search("another-org", q, 10)
	if err != nil || res.Total != 0 || len(res.Records) != 0 {
		t.Fatalf("another org: %+v, %v", res, err)
	}
}

func TestVersions(t *testing.T) {
	t.Parallel()
	schema := seedset.Schemas()["Deals"]
	deal := func(v int64, name string) *crmv1.RecordUpserted {
		return upserted("o", &crmv1.Record{Module: "Deals", Id: "d1", Version: v, Fields: map[string]*crmv1.FieldValue{"Deal_Name": seedset.Text(name)}}, schema)
	}
	type step struct {
		up      *crmv1.RecordUpserted
		del     int64 // a delete of d1 with this version, when up is nil
		applied bool
	}
	tests := []struct {
		name  string
		steps []step
		want  string // the deal's name afterwards, "" when absent
	}{
		{"newer overwrites", []step{{up: deal(1, "a"), applied: true}, {up: deal(2, "b"), applied: true}}, "b"},
		{"older never overwrites", []step{{up: deal(2, "b"), applied: true}, {up: deal(1, "a")}}, "b"},
		{"duplicate is a no-op", []step{{up: deal(1, "a"), applied: true}, {up: deal(1, "z")}}, "a"},
		{"delete removes", []step{{up: deal(1, "a"), applied: true}, {del: 2, applied: true}}, ""},
		{"delete wins over an older upsert arriving later", []step{{up: deal(1, "a"), applied: true}, {del: 2, applied: true}, {up: deal(1, "a")}}, ""},
		{"delete before any upsert keeps older ones out", []step{{del: 5, applied: true}, {up: deal(3, "a")}}, ""},
		{"stale delete is ignored", []step{{up: deal(3, "c"), applied: true}, {del: 2}}, "c"},
		{"duplicate delete is a no-op", []step{{up: deal(1, "a"), applied: true}, {del: 2, applied: true}, {del: 2}}, ""},
		{"a later upsert resurrects", []step{{up: deal(1, "a"), applied: true}, {del: 2, applied: true}, {up: deal(3, "back"), applied: true}}, "back"},
		{"resurrected then deleted again", []step{{del: 2, applied: true}, {up: deal(3, "x"), applied: true}, {del: 4, applied: true}, {up: deal(3, "x")}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := projection.New()
			for i, st := range tt.steps {
				var applied bool
				var err error
				if st.up != nil {
					applied, err = s.ApplyUpserted(st.up)
				} else {
					applied, err = s.ApplyDeleted(deleted("o", "Deals", "d1", st.del))
				}
				if err != nil || applied != st.applied {
					t.Fatalf("step %d: applied %v, %v; want %v", i, applied, err, st.applied)
				}
			}
			rec, ok, err := s.Get("o", "Deals", "d1")
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if ok {
				got = rec.GetFields()["Deal_Name"].GetText()
			}
			if got != tt.want {
				t.Fatalf("deal name %q, want %q", got, tt.want)
			}
		})
	}
}

// TestDeleteKeepsOthersSearchable: removing rows from the middle of a table
// (the last row moves into the hole) leaves every other record findable.
func TestDeleteKeepsOthersSearchable(t *testing.T) {
	t.Parallel()
	s := seeded(t)
	for _, id := range []string{"lead-01", "lead-12", "lead-06"} {
		if ok, err := s.ApplyDeleted(deleted(seedset.Org, "Leads", id, 2)); !ok || err != nil {
			t.Fatalf("delete %s: %v %v", id, ok, err)
		}
	}
	res, err := run(t, s, seedset.Org, "leads zylker")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"lead-04", "lead-03", "lead-07", "lead-11", "lead-09"}; !slices.Equal(ids(res), want) || res.Total != 5 {
		t.Fatalf("got %v (total %d), want %v", ids(res), res.Total, want)
	}
	for _, id := range []string{"lead-02", "lead-08", "lead-11"} {
		if _, ok, _ := s.Get(seedset.Org, "Leads", id); !ok {
			t.Errorf("%s lost", id)
		}
	}
}

func TestInvalidEvents(t *testing.T) {
	t.Parallel()
	s := projection.New()
	schema := seedset.Schemas()["Leads"]
	rec := &crmv1.Record{Module: "Leads", Id: "x", Version: 1}
	for name, ev := range map[string]*crmv1.RecordUpserted{
		"no org":       upserted("", rec, schema),
		"no record":    upserted("o", nil, schema),
		"no schema":    upserted("o", rec, nil),
		"wrong schema": upserted("o", rec, seedset.Schemas()["Deals"]),
		"no id":        upserted("o", &crmv1.Record{Module: "Leads"}, schema),
	} {
		if _, err := s.ApplyUpserted(ev); !errors.Is(err, projection.ErrInvalidEvent) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := s.ApplyDeleted(deleted("o", "Leads", "", 1)); !errors.Is(err, projection.ErrInvalidEvent) {
		t.Errorf("delete without id: %v", err)
	}
}

func TestLimitAndTotal(t *testing.T) {
	t.Parallel()
	s := seeded(t)
	cmd, _ := slash.Parse("leads")
	schema, _ := s.Schema(seedset.Org, "Leads")
	q, err := filter.Bind(cmd, schema)
	if err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{-1, 0, 1, 3, 12, 50} {
		res, err := s.Search(seedset.Org, q, limit)
		if err != nil {
			t.Fatal(err)
		}
		want := seedset.Examples()[0].Want
		want = append(want, "lead-05", "lead-08")[:min(max(limit, 0), 12)]
		if !slices.Equal(ids(res), want) || res.Total != 12 {
			t.Errorf("limit %d: %v (total %d), want %v", limit, ids(res), res.Total, want)
		}
	}
}

// TestConcurrentApplyAndSearch runs writers and readers together; -race
// checks the locking.
func TestConcurrentApplyAndSearch(t *testing.T) {
	t.Parallel()
	s := seeded(t)
	schema := seedset.Schemas()["Deals"]
	q, err := filter.Bind(slash.Command{Kind: slash.KindGlobalSearch, Module: "Deals", Words: []string{"bulk"}}, schema)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				id := fmt.Sprintf("bulk-%d-%d", w, i%50)
				rec := &crmv1.Record{Module: "Deals", Id: id, Version: int64(i), Fields: map[string]*crmv1.FieldValue{"Deal_Name": seedset.Text("Bulk " + id)}}
				if _, err := s.ApplyUpserted(upserted(seedset.Org, rec, schema)); err != nil {
					t.Error(err)
				}
				if i%7 == 0 {
					if _, err := s.ApplyDeleted(deleted(seedset.Org, "Deals", id, int64(i)+1)); err != nil {
						t.Error(err)
					}
				}
			}
		})
		wg.Go(func() {
			for range 200 {
				res, err := s.Search(seedset.Org, q, 10)
				if err != nil || len(res.Records) > 10 || res.Total < len(res.Records) {
					t.Errorf("search: %d records, total %d, %v", len(res.Records), res.Total, err)
				}
			}
		})
	}
	wg.Wait()
	// The seed's deals are untouched by the churn.
	res, err := run(t, s, seedset.Org, "deals [amount] < [20000]")
	if err != nil || !slices.Equal(ids(res), []string{"deal-01", "deal-05", "deal-03"}) {
		t.Fatalf("after churn: %v, %v", ids(res), err)
	}
}

func TestSchemaChangeKeepsOldRows(t *testing.T) {
	t.Parallel()
	s := seeded(t)
	schema := seedset.Schemas()["Deals"]
	schema.Fields = append(schema.Fields, &crmv1.FieldMeta{ApiName: "Region", Label: "Region", Type: crmv1.FieldType_FIELD_TYPE_PICKLIST})
	rec := &crmv1.Record{Module: "Deals", Id: "deal-06", Version: 1, Fields: map[string]*crmv1.FieldValue{
		"Deal_Name": seedset.Text("Zeta"), "Amount": seedset.Number(1), "Region": seedset.Text("EMEA"),
	}}
	if _, err := s.ApplyUpserted(upserted(seedset.Org, rec, schema)); err != nil {
		t.Fatal(err)
	}
	for text, want := range map[string][]string{
		"deals [region] is [emea]": {"deal-06"},
		"deals [amount] < [20000]": {"deal-01", "deal-05", "deal-03", "deal-06"},
	} {
		res, err := run(t, s, seedset.Org, text)
		if err != nil || !slices.Equal(ids(res), want) {
			t.Errorf("%s: %v, %v; want %v", text, ids(res), err, want)
		}
	}
}
