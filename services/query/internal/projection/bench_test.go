package projection_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/testkit/harness"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	"github.com/crmslack/crmslack/services/query/internal/filter"
	"github.com/crmslack/crmslack/services/query/internal/projection"
	"github.com/crmslack/crmslack/services/query/internal/seedset"
	"github.com/crmslack/crmslack/services/query/internal/slash"
)

// generated fills a store with n leads drawn from a fixed seed, shaped like
// the seed records (names, companies, phones, sources, revenue, age, notes).
func generated(tb testing.TB, n int) *projection.Store {
	tb.Helper()
	rng := rand.New(rand.NewPCG(5, 100_000))
	firsts := []string{"Peter", "Mary", "John", "Anna", "Sam", "Eve", "Kate", "Tom", "Nina", "Omar", "Lena", "Paul", "James", "Sarah"}
	lasts := []string{"Watson", "Smith", "Peterson", "Doe", "Stone", "Watsonville", "Brown", "Haddad", "Smithson", "Martin", "Butler", "Nguyen", "Garcia", "Müller"}
	companies := []string{"Zylker", "Zylkerton Labs", "Acme Corp", "Globex", "Initech", "Umbrella", "Hooli", "Stark Industries", "Wayne Enterprises", "Cyberdyne"}
	sources := []string{"Advertisement", "Cold Call", "Partner", "Tradeshow", "Webform"}
	prefixes := []string{"555", "234", "912", "301", "415", "020"}
	notes := []string{"Met at the booth", "Asked for a demo of the analytics add-on", "Referred by a partner", "", "Wants a quote before the end of the quarter"}
	schema := seedset.Schemas()["Leads"]
	s := projection.New()
	for i := range n {
		first, last := firsts[rng.IntN(len(firsts))], lasts[rng.IntN(len(lasts))]
		company := companies[rng.IntN(len(companies))]
		f := map[string]*crmv1.FieldValue{
			"First_Name": seedset.Text(first), "Last_Name": seedset.Text(last), "Full_Name": seedset.Text(first + " " + last),
			"Company":        seedset.Text(company),
			"Email":          seedset.Text(fmt.Sprintf("%s.%s%d@example.com", first, last, i)),
			"Phone":          seedset.Text(fmt.Sprintf("%s-%04d", prefixes[rng.IntN(len(prefixes))], rng.IntN(10000))),
			"Lead_Source":    seedset.Text(sources[rng.IntN(len(sources))]),
			"Annual_Revenue": seedset.Number(float64(rng.IntN(200) * 1000)),
			"Age":            seedset.Number(float64(20 + rng.IntN(50))),
			"Description":    seedset.Text(notes[rng.IntN(len(notes))]),
			"Email_Opt_Out":  seedset.Bool(rng.IntN(2) == 0),
			"Owner":          seedset.Lookup("u1", "Ada Admin", "Users"),
		}
		rec := &crmv1.Record{Module: "Leads", Id: fmt.Sprintf("lead-%06d", i), Version: 1, Fields: f}
		if _, err := s.ApplyUpserted(upserted("bench", rec, schema)); err != nil {
			tb.Fatal(err)
		}
	}
	return s
}

// BenchmarkSearch: parse, bind and search over 100,000 leads
// (PROJECTION_BENCH_RECORDS to change it), reporting the median and 99th
// percentile of single searches next to the mean.
func BenchmarkSearch(b *testing.B) {
	n := harness.EnvInt(b, "PROJECTION_BENCH_RECORDS", 100_000)
	s := generated(b, n)
	schema, _ := s.Schema("bench", "Leads")
	for _, bc := range []struct{ name, text string }{
		{"list", "leads"},
		{"global", "leads zylker"},
		{"global-two-words", "leads peter quote"},
		{"equals", "leads [last name] = [watson]"},
		{"prefix", "leads [last name] starts with [wat]"},
		{"suffix", "leads [email] ends with [7@example.com]"},
		{"boolean", "leads [email opt out] is [true]"},
		{"contains", "leads [company] contains [zyl]"},
		{"numeric", "leads [annual revenue] > [150000]"},
		{"multi-field", "leads [lead source] = [webform, tradeshow] [annual revenue] >= [10000] [email] contains [smith] [phone] starts with [555, 234] [age] <= [40]"},
		{"no-match", "leads [email] contains [nobody-has-this]"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			times := make([]time.Duration, 0, b.N)
			var total int
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				cmd, err := slash.Parse(bc.text)
				if err != nil {
					b.Fatal(err)
				}
				q, err := filter.Bind(cmd, schema)
				if err != nil {
					b.Fatal(err)
				}
				res, err := s.Search("bench", q, 10)
				if err != nil {
					b.Fatal(err)
				}
				total = res.Total
				times = append(times, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(times[len(times)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(total), "matches")
		})
	}
}

// BenchmarkApply: one upsert of a new version of an existing record.
func BenchmarkApply(b *testing.B) {
	s := generated(b, 10_000)
	schema := seedset.Schemas()["Leads"]
	rec := &crmv1.Record{Module: "Leads", Id: "lead-000042", Fields: map[string]*crmv1.FieldValue{
		"Full_Name": seedset.Text("Peter Watson"), "Company": seedset.Text("Zylker"), "Phone": seedset.Text("555-0101"),
		"Annual_Revenue": seedset.Number(50000), "Email": seedset.Text("peter@zylker.com"),
	}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		rec.Version = int64(i + 2)
		if _, err := s.ApplyUpserted(upserted("bench", rec, schema)); err != nil {
			b.Fatal(err)
		}
	}
}
