package e2e

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/slackstandin"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/testkit/harness"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	"github.com/crmslack/crmslack/services/query/internal/seedset"
)

// Benchmark sizes; QUERY_BENCH_RECORDS and QUERY_BENCH_COMMANDS make a
// quicker run while working on the pipeline (and the log says so).
const (
	benchRecords  = 1_000_000
	benchCommands = 500 // per kind of query: 10 s at benchRate
	benchRate     = 50  // commands per second
)

// benchKinds are the kinds of /zcrm query the benchmark times: every
// comparator family of the criteria language, and both ways of combining.
var benchKinds = []struct{ name, text string }{
	{"list", "leads"},
	{"global", "leads zylker"},
	{"equals", "leads [last name] = [watson]"},
	{"prefix", "leads [last name] starts with [wat]"},
	{"suffix", "leads [email] ends with [7@example.com]"},
	{"contains", "leads [company] contains [zyl]"},
	{"numeric-range", "leads [annual revenue] > [150000]"},
	{"boolean", "leads [email opt out] is [true]"},
	{"multi-field", "leads [lead source] = [webform, tradeshow] [annual revenue] >= [10000] [email] contains [smith] [phone] starts with [555, 234] [age] <= [40]"},
}

// BenchmarkSlashCommandEndToEnd: a million leads (QUERY_BENCH_RECORDS)
// imported with the real crmctl from a CSV file through the whole
// pipeline into the query service, which runs as a process of its own
// from its real main; then, for each kind of query, 500 signed /zcrm
// commands sent by the Slack stand-in to the gateway at a steady 50 per
// second (one every 20 ms, each on its own, whether or not the previous one
// was answered), timed from the signed request entering the gateway to its
// answer read in full: the gateway's signature check, its gRPC call to the
// query service (the caller's email from the team registry, cached; parse,
// search, render) and its record of the command on SLACK_IN. Then the
// query service is stopped and started again.
//
// Sub-benchmarks, each reporting its figures once (ns/op means nothing
// here):
//   - import: records/s from crmctl's start until every record is
//     searchable, the CPU each part spent per record meanwhile (query,
//     crmctl, and the rest of the stack, NATS above all), and the query
//     process's resident set (rss-MB, peak-rss-MB) and Go heap in use
//     (heap-MB) after it;
//   - one per kind of query: p50, p99 and slowest answer over how many
//     commands; the target is p99 under 25 ms. Every answer is checked: the
//     expected total and a full first page; one the gateway deferred past
//     its budget ("Searching…") counts at that time and in deferred;
//   - restart: SIGTERM to ready again (ready-s: the rebuild from the
//     snapshot streams; cpu-s the new process's CPU until then), and the
//     memory figures after it; peak-rss-MB is the rebuild's high-water mark.
//
// Everything but the query service runs in this process on the embedded
// stores (NATS JetStream on file storage, FerretDB), as in the tests.
func BenchmarkSlashCommandEndToEnd(b *testing.B) {
	n := harness.EnvInt(b, "QUERY_BENCH_RECORDS", benchRecords)
	commands := harness.EnvInt(b, "QUERY_BENCH_COMMANDS", benchCommands)
	crmctl := buildBinary(b, "github.com/crmslack/crmslack/deploy/crmctl")
	s := startStack(b, stackOptions{quiet: true, queryBinary: buildBinary(b, "github.com/crmslack/crmslack/services/query/cmd/query")})
	csvPath, schemaPath := writeLeads(b, n)

	imp := importLeads(b, s, crmctl, csvPath, schemaPath, n)
	once(b, "import", func(b *testing.B) {
		b.ReportMetric(float64(n)/imp.took.Seconds(), "records/s")
		// CPU per record, which the machine's load does not change: the
		// query service's, crmctl's and the rest of the stack's (NATS
		// above all).
		perRecord := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
		b.ReportMetric(perRecord(imp.queryCPU), "query-cpu-µs/record")
		b.ReportMetric(perRecord(imp.crmctlCPU), "crmctl-cpu-µs/record")
		b.ReportMetric(perRecord(imp.stackCPU), "stack-cpu-µs/record")
		reportMemory(b, s.queryProc)
	})

	for _, bc := range benchKinds {
		// The expected answer, asked of the query service directly; a first
		// command through the gateway also warms its connections.
		want := s.total(b, bc.text)
		if want <= 0 {
			b.Fatalf("%q matches nothing in the generated leads", bc.text)
		}
		if got := checkAnswer(s.slash(b, acme, acmeSales, alice, bc.text), want); got != nil {
			b.Fatalf("warm-up %q: %v", bc.text, got)
		}
		b.Run(bc.name, func(b *testing.B) {
			var times []time.Duration
			var elapsed time.Duration
			deferred := 0
			for range b.N {
				t0 := time.Now()
				ts, d := s.paced(b, bc.text, want, commands)
				times, deferred = append(times, ts...), deferred+d
				elapsed += time.Since(t0)
			}
			slices.Sort(times)
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(ms(times[len(times)/2]), "p50-ms")
			b.ReportMetric(ms(times[len(times)*99/100]), "p99-ms")
			b.ReportMetric(ms(times[len(times)-1]), "max-ms")
			b.ReportMetric(float64(len(times))/elapsed.Seconds(), "cmds/s")
			b.ReportMetric(float64(len(times)), "cmds")
			b.ReportMetric(float64(want), "matches")
			b.ReportMetric(float64(deferred), "deferred")
		})
	}

	ready := s.queryProc.restart()
	rebuildCPU := s.queryProc.cpu() // the new process's, all of it the rebuild's
	if got := s.total(b, "leads"); got != int64(n) {
		b.Fatalf("after the restart %d leads are searchable, want %d", got, n)
	}
	once(b, "restart", func(b *testing.B) {
		b.ReportMetric(ready.Seconds(), "ready-s")
		b.ReportMetric(float64(n)/ready.Seconds(), "snapshots/s")
		b.ReportMetric(rebuildCPU.Seconds(), "cpu-s")
		reportMemory(b, s.queryProc)
	})
}

// once runs a sub-benchmark that reports figures measured before it:
// its loop does nothing, so the framework's growing b.N costs nothing.
func once(b *testing.B, name string, report func(b *testing.B)) {
	b.Run(name, func(b *testing.B) {
		for range b.N {
		}
		b.ReportMetric(0, "ns/op")
		report(b)
	})
}

func reportMemory(b *testing.B, p *queryProcess) {
	rss, peak := p.memory()
	b.ReportMetric(float64(rss)/(1<<20), "rss-MB")
	b.ReportMetric(float64(peak)/(1<<20), "peak-rss-MB")
	b.ReportMetric(p.metric("go_memstats_heap_inuse_bytes")/(1<<20), "heap-MB")
}

// writeLeads writes n generated leads as a CRM export (CSV, headed by the
// fields' labels) and their module's schema as JSON, and returns both
// paths.
func writeLeads(b *testing.B, n int) (csvPath, schemaPath string) {
	b.Helper()
	dir := b.TempDir()
	schema := seedset.Schemas()["Leads"]
	sj, err := protojson.Marshal(schema)
	if err != nil {
		b.Fatal(err)
	}
	schemaPath = filepath.Join(dir, "leads-schema.json")
	if err := os.WriteFile(schemaPath, sj, 0o600); err != nil {
		b.Fatal(err)
	}
	leads := seedset.GeneratedLeads(n)
	var fields []*crmv1.FieldMeta // those the generated leads have
	for _, f := range schema.GetFields() {
		if _, ok := leads[0].GetFields()[f.GetApiName()]; ok {
			fields = append(fields, f)
		}
	}
	csvPath = filepath.Join(dir, "leads.csv")
	f, err := os.Create(csvPath)
	if err != nil {
		b.Fatal(err)
	}
	w := csv.NewWriter(f)
	line := []string{"Record Id"}
	for _, fm := range fields {
		line = append(line, fm.GetLabel())
	}
	_ = w.Write(line)
	for _, r := range leads {
		line = append(line[:0], r.GetId())
		for _, fm := range fields {
			switch v := r.GetFields()[fm.GetApiName()].GetKind().(type) {
			case *crmv1.FieldValue_Text:
				line = append(line, v.Text)
			case *crmv1.FieldValue_Number:
				line = append(line, strconv.FormatFloat(v.Number, 'f', -1, 64))
			case *crmv1.FieldValue_Boolean:
				line = append(line, strconv.FormatBool(v.Boolean))
			case *crmv1.FieldValue_Lookup:
				line = append(line, v.Lookup.GetName())
			default:
				b.Fatalf("generated lead field %s: %T", fm.GetApiName(), v)
			}
		}
		_ = w.Write(line)
	}
	w.Flush()
	if err := errors.Join(w.Error(), f.Close()); err != nil {
		b.Fatal(err)
	}
	return csvPath, schemaPath
}

// imported is what an import took: the time from crmctl's start until
// every record is searchable, and the CPU time each part of the pipeline
// spent meanwhile.
type imported struct {
	took                          time.Duration
	queryCPU, crmctlCPU, stackCPU time.Duration
}

// importLeads publishes Alice as a CRM user, runs crmctl import on the
// file and returns how long it took until the query service can search
// all n, and the CPU it cost.
func importLeads(b *testing.B, s *stack, crmctl, csvPath, schemaPath string, n int) imported {
	b.Helper()
	ctx := testkit.Context(b)
	if err := s.crm.PublishBatch(ctx, []bus.Published{crmUser()}); err != nil {
		b.Fatal(err)
	}
	queryCPU, stackCPU := s.queryProc.cpu(), selfCPU(b)
	start := time.Now()
	ictx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ictx, crmctl, "import", "-org", org, "-module", "Leads", "-schema", schemaPath, "-nats", s.natsURL, "-pki", testkit.PKI(b).Path(), csvPath)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("crmctl import: %v\n%s", err, out)
	}
	published := time.Since(start)
	deadline := time.Now().Add(40 * time.Minute)
	lastLog := time.Now()
	for got := s.total(b, "leads"); got != int64(n); got = s.total(b, "leads") {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d leads searchable after %s", got, n, time.Since(start).Round(time.Second))
		}
		if time.Since(lastLog) > 10*time.Second {
			b.Logf("%d of %d leads searchable after %s", got, n, time.Since(start).Round(time.Second))
			lastLog = time.Now()
		}
		// Each poll is a search of every record, which holds the
		// projection's read lock: often enough to time the import to a few
		// per cent, rarely enough not to slow it.
		time.Sleep(100 * time.Millisecond)
	}
	all := time.Since(start)
	im := imported{took: all, queryCPU: s.queryProc.cpu() - queryCPU, stackCPU: selfCPU(b) - stackCPU,
		crmctlCPU: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
	b.Logf("crmctl import of %d leads: published in %s, all searchable after %s (%.0f records/s); crmctl said: %s",
		n, published.Round(time.Millisecond), all.Round(time.Millisecond), float64(n)/all.Seconds(), strings.TrimSpace(lastLine(out)))
	return im
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// paced sends count commands at benchRate per second, each on its own
// goroutine so a slow answer never delays the next command, and returns
// how long each took to be answered.
//
// An answer deferred past the gateway's budget ("Searching…", the answer
// following through the response_url) is a slow answer, not a wrong one:
// it counts with its time (the budget, a lower bound of the wait) and in
// deferred; any other unexpected answer fails the benchmark.
func (s *stack) paced(b *testing.B, text string, want int64, count int) (times []time.Duration, deferred int) {
	b.Helper()
	ctx := testkit.Context(b)
	times = make([]time.Duration, count)
	errs := make([]error, count)
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / benchRate)
	defer tick.Stop()
	for i := range count {
		if i > 0 {
			<-tick.C
		}
		wg.Go(func() {
			d, err := s.sender.SlashCommand(ctx, s.commands, slackstandin.SlashCommand{
				TeamID: acme, ChannelID: acmeSales, UserID: alice, Command: "/zcrm", Text: text,
			})
			if err != nil {
				errs[i] = err
				return
			}
			times[i], errs[i] = d.Duration, checkAnswer(d, want)
		})
	}
	wg.Wait()
	failed := 0
	for _, err := range errs {
		if errors.Is(err, errDeferred) {
			deferred++
			continue
		}
		if err != nil {
			if failed == 0 {
				b.Errorf("%q: %v", text, err)
			}
			failed++
		}
	}
	if failed > 0 {
		b.Fatalf("%q: %d of %d commands not answered as expected", text, failed, count)
	}
	return times, deferred
}

// errDeferred: the gateway answered "Searching…", its budget spent.
var errDeferred = errors.New("deferred: not answered while Slack waited")

// checkAnswer checks one answer under load: answered while Slack waited,
// with the expected total and a full first page.
func checkAnswer(d *slackstandin.Delivery, want int64) error {
	if d.StatusCode != 200 {
		return fmt.Errorf("HTTP %d: %.200s", d.StatusCode, d.Body)
	}
	a, err := parseAnswer(d.Body)
	if err != nil {
		return err
	}
	switch {
	case strings.HasPrefix(a.Text, searching):
		return fmt.Errorf("after %s: %w", d.Duration, errDeferred)
	case int64(a.total) != want || len(a.ids) != int(min(want, 10)):
		return fmt.Errorf("%d records shown of %d, want %d: %.200s", len(a.ids), a.total, want, a.Text)
	}
	return nil
}
