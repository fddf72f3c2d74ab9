package e2e

import (
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/slackstandin"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/topology"
	slackv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/slack/v1"
	workflowsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/workflows/v1"
)

// benchSize is the run size: every iteration fires this many rules. The
// reported figures are at the default; smaller runs are for profiling.
var benchSize = flag.Int("bench.triggers", 20000, "triggers per BenchmarkTriggers iteration")

// BenchmarkTriggers measures the path a CRM's workflow events take, end to
// end: benchTriggers WorkflowRuleTriggered events published at once (in
// batches of 1,000) over four rules of one org, each rule with one action
// posting to one target of the Acme team (three channels and a DM), through
// workflows and delivery (shipped defaults, Slack's per-channel pace and
// the stand-in's rate limits off) until the stand-in has accepted every
// message. It reports triggers/s from the first publish to the last
// message accepted, and each trigger's latency (publish → accepted) at
// p50 and p99.
func BenchmarkTriggers(b *testing.B) {
	benchTriggers := *benchSize
	s := startStack(b, options{quiet: true})
	benchActions(b, s)
	var p50s, p99s, rates []float64
	for n := range b.N {
		base := len(s.standin.Messages(slackstandin.MessageFilter{Team: acme}))
		posts := s.standin.Stats().Calls["chat.postMessage"]
		start, published := benchPublish(b, s, n, benchTriggers)
		// Counted, not listed, while waiting: listing is O(messages).
		testkit.Eventually(b, 15*time.Minute, func() bool {
			return s.standin.Stats().Calls["chat.postMessage"] >= posts+benchTriggers
		}, "every post accepted by the stand-in")
		ms := s.standin.Messages(slackstandin.MessageFilter{Team: acme})
		if len(ms) < base+benchTriggers {
			b.Fatalf("%d messages, want %d", len(ms)-base, benchTriggers)
		}
		lat := make([]time.Duration, 0, benchTriggers)
		last := start
		for _, m := range ms[base:] {
			i, ok := benchIndex(m.Text, benchTriggers)
			if !ok {
				b.Fatalf("unexpected message %q", m.Text)
			}
			lat = append(lat, m.Time.Sub(published[i]))
			if m.Time.After(last) {
				last = m.Time
			}
		}
		p50, p99 := percentiles(lat)
		p50s, p99s = append(p50s, p50), append(p99s, p99)
		rates = append(rates, float64(benchTriggers)/last.Sub(start).Seconds())
	}
	report(b, rates, p50s, p99s)
}

// BenchmarkTriggersToEgress is BenchmarkTriggers without the egress: it
// measures workflows alone, from the triggers' publish until every post
// command is stored on SLACK_OUT for the egress (each trigger's latency is
// its publish to its command's stream timestamp).
func BenchmarkTriggersToEgress(b *testing.B) {
	benchTriggers := *benchSize
	s := startStack(b, options{quiet: true, noDelivery: true})
	benchActions(b, s)
	var p50s, p99s, rates []float64
	for n := range b.N {
		base := s.countOut(b)
		start, published := benchPublish(b, s, n, benchTriggers)
		testkit.Eventually(b, 10*time.Minute, func() bool { return s.countOut(b) >= base+uint64(benchTriggers) }, "every command on SLACK_OUT")
		lat, last := commandLatencies(b, s, base, published, fmt.Sprintf("bench-%d-", n))
		p50, p99 := percentiles(lat)
		p50s, p99s = append(p50s, p50), append(p99s, p99)
		rates = append(rates, float64(benchTriggers)/last.Sub(start).Seconds())
	}
	report(b, rates, p50s, p99s)
}

// benchActions adds one action to each of four rules, one target each.
func benchActions(b *testing.B, s *stack) {
	b.Helper()
	s.seedSchema(b)
	targets := []struct {
		kind workflowsv1.TargetKind
		id   string
	}{
		{workflowsv1.TargetKind_TARGET_KIND_CHANNELS, acmeGnrl}, {workflowsv1.TargetKind_TARGET_KIND_CHANNELS, acmeSales},
		{workflowsv1.TargetKind_TARGET_KIND_CHANNELS, "G0ACMEDEAL"}, {workflowsv1.TargetKind_TARGET_KIND_USERS, bob},
	}
	for i, tg := range targets {
		if _, err := s.workflows.CreateAction(testkit.Context(b), &workflowsv1.CreateActionRequest{OrgId: org, Caller: admin, Spec: &workflowsv1.ActionSpec{
			RuleId: "rule-" + strconv.Itoa(i), Module: "Deals", TeamId: acme, TargetKind: tg.kind, Targets: []string{tg.id},
			Template: "*Deal won* #{Deals.Deal Name} for #{Deals.Amount}, closing #{Deals.Closing Date} (#{Owner.Full Name}) #{Record.Link}",
		}}); err != nil {
			b.Fatal(err)
		}
	}
}

// benchPublish publishes n triggers at once, in batches of 1,000, round
// robin over the four rules, and returns when each was published.
func benchPublish(b *testing.B, s *stack, iter, n int) (time.Time, []time.Time) {
	b.Helper()
	published := make([]time.Time, n)
	items := make([]bus.Published, 0, 1000)
	start := time.Now()
	for i := range n {
		ev := trigger(fmt.Sprintf("bench-%d-%d", iter, i), "rule-"+strconv.Itoa(i%4), deal("d-"+strconv.Itoa(i), "B"+strconv.Itoa(i)))
		items = append(items, bus.Published{Subject: topology.WorkflowTriggered(org), Event: ev})
		if len(items) == cap(items) || i == n-1 {
			at := time.Now()
			for j := i + 1 - len(items); j <= i; j++ {
				published[j] = at
			}
			if err := s.bus.PublishBatch(testkit.Context(b), items); err != nil {
				b.Fatal(err)
			}
			items = items[:0]
		}
	}
	return start, published
}

// commandLatencies reads the commands stored after seq base and returns
// each one's latency from its trigger's publish, and the last store time.
func commandLatencies(b *testing.B, s *stack, base uint64, published []time.Time, prefix string) ([]time.Duration, time.Time) {
	b.Helper()
	ctx := testkit.Context(b)
	st, err := s.js.Stream(ctx, topology.StreamSlackOut)
	if err != nil {
		b.Fatal(err)
	}
	c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: base + 1})
	if err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	var last time.Time
	for len(lat) < len(published) {
		m, err := c.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			b.Fatalf("after %d commands: %v", len(lat), err)
		}
		md, err := m.Metadata()
		if err != nil {
			b.Fatal(err)
		}
		var cmd slackv1.PostMessage
		if err := proto.Unmarshal(m.Data(), &cmd); err != nil {
			b.Fatal(err)
		}
		i, err := strconv.Atoi(strings.TrimPrefix(cmd.GetEnvelope().GetCausationId(), prefix))
		if err != nil || i < 0 || i >= len(published) {
			b.Fatalf("command of an unknown trigger %q", cmd.GetEnvelope().GetCausationId())
		}
		lat = append(lat, md.Timestamp.Sub(published[i]))
		if md.Timestamp.After(last) {
			last = md.Timestamp
		}
	}
	return lat, last
}

func percentiles(lat []time.Duration) (p50, p99 float64) {
	slices.Sort(lat)
	return float64(lat[len(lat)/2]) / 1e6, float64(lat[len(lat)*99/100]) / 1e6
}

func report(b *testing.B, rates, p50s, p99s []float64) {
	b.ReportMetric(median(rates), "triggers/s")
	b.ReportMetric(median(p50s), "p50-ms")
	b.ReportMetric(median(p99s), "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// benchIndex reads i back from "*Deal won* B<i> for …".
func benchIndex(text string, n int) (int, bool) {
	rest, ok := strings.CutPrefix(text, "*Deal won* B")
	if !ok {
		return 0, false
	}
	num, _, _ := strings.Cut(rest, " ")
	i, err := strconv.Atoi(num)
	return i, err == nil && i >= 0 && i < n
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
