package delivery_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/slackstandin"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/topology"

	"github.com/crmslack/crmslack/services/delivery"
	"github.com/crmslack/crmslack/services/delivery/internal/partition"
)

const ownedMetric = "crmslack_delivery_partitions_owned"

// waitOwned waits until r holds n partitions.
func waitOwned(t testing.TB, r *running, n int) {
	t.Helper()
	testkit.Eventually(t, 20*time.Second, func() bool { return r.metric(ownedMetric) == float64(n) },
		"the replica holds %d partitions (holds %v)", n, lazyMetric{r, ownedMetric})
}

type lazyMetric struct {
	r    *running
	name string
}

func (l lazyMetric) String() string { return fmt.Sprint(l.r.metric(l.name)) }

// owners reads the partition leases: partition → instance.
func (e *env) owners(t testing.TB) map[int]string {
	t.Helper()
	ctx := testkit.Context(t)
	kv, err := e.js.KeyValue(ctx, partition.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	for k := range testPartitions {
		entry, err := kv.Get(ctx, fmt.Sprintf("lease.%d", k))
		if err != nil {
			continue
		}
		var v struct{ Owner string }
		if json.Unmarshal(entry.Value(), &v) == nil {
			out[k] = v.Owner
		}
	}
	return out
}

// orgAcross finds an org id whose four teams fall two in partitions that
// instance holds and two in partitions it does not, so that both replicas
// have work.
func (e *env) orgAcross(t testing.TB, prefix, instance string) string {
	t.Helper()
	// The leases are read until they are split: on a loaded machine a
	// replica may still be taking its half when this is first asked.
	var org string
	var owners map[int]string
	testkit.Eventually(t, 20*time.Second, func() bool {
		owners = e.owners(t)
		for i := range 10000 {
			candidate := fmt.Sprintf("%s-%d", prefix, i)
			mine := 0
			for _, team := range teams {
				if owners[partition.Of(candidate, team, testPartitions)] == instance {
					mine++
				}
			}
			if mine == 2 {
				org = candidate
				return true
			}
		}
		return false
	}, "no org splits the teams between the replicas (leases %v)", lazyOwners{e, t})
	return org
}

// lazyOwners prints the leases only when a failure message needs them.
type lazyOwners struct {
	e *env
	t testing.TB
}

func (l lazyOwners) String() string { return fmt.Sprint(l.e.owners(l.t)) }

// batch is n messages to each of the 20 channels of the four teams (5
// each), in rounds: text "<tag> <channel> <i>".
func batch(org, tag string, from, n int) (cmds []bus.Event, ids []string) {
	for i := from; i < from+n; i++ {
		for _, team := range teams {
			for c := range teamChannels {
				ch := teamChannel(team, c)
				cmd := postTo(org, team, ch, fmt.Sprintf("%s %s %d", tag, ch, i))
				cmds = append(cmds, cmd)
				ids = append(ids, cmd.GetEnvelope().GetEventId())
			}
		}
	}
	return cmds, ids
}

// checkChannels fails t unless each of the 20 channels received exactly
// "<tag> <channel> 0" to "<tag> <channel> n-1", in order.
func (e *env) checkChannels(t testing.TB, tag string, n int) {
	t.Helper()
	for _, team := range teams {
		for c := range teamChannels {
			ch := teamChannel(team, c)
			want := make([]string, n)
			for i := range want {
				want[i] = fmt.Sprintf("%s %s %d", tag, ch, i)
			}
			if got := e.textsIn(ch); !slices.Equal(got, want) {
				t.Errorf("channel %s: %d messages, want %d exactly once in order; first difference at %d",
					ch, len(got), len(want), firstDiff(got, want))
			}
		}
	}
}

// TestReplicasShareThePartitions: two replicas in one process split the
// partitions and together deliver 1,000 messages over 20 channels in 4
// teams, exactly once and in order per channel. Then one of them stops in
// the middle of a second batch: its partitions pass to the other, with
// nothing lost, nothing twice and the order kept.
func TestReplicasShareThePartitions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	a := e.start(e.config())
	waitOwned(t, a, testPartitions)
	b := e.start(e.config())
	waitOwned(t, a, testPartitions/2)
	waitOwned(t, b, testPartitions/2)

	org := e.orgAcross(t, "org-split", a.addrs.Instance)
	e.setAccess(org, true, teams...)
	cmds, ids := batch(org, "S", 0, 50)
	e.publish(cmds...)
	e.out.wait(t, 60*time.Second, ids...)
	for _, id := range ids {
		checkPermalink(t, e.out.mustSucceed(t, id))
	}
	e.checkChannels(t, "S", 50)
	// Each replica counts a command just after reporting its outcome.
	var byA, byB float64
	testkit.Eventually(t, 5*time.Second, func() bool {
		byA = a.metric("crmslack_delivery_commands_total", "outcome", "succeeded")
		byB = b.metric("crmslack_delivery_commands_total", "outcome", "succeeded")
		return byA+byB >= 1000
	}, "1,000 commands counted")
	t.Logf("replica a carried out %v commands, b %v", byA, byB)
	if byA+byB != 1000 || byA == 0 || byB == 0 {
		t.Errorf("a %v + b %v commands: want 1,000, shared", byA, byB)
	}

	// b stops (its context ends) with half of a second batch left.
	e.shim.delay.Store(int64(20 * time.Millisecond))
	cmds, ids = batch(org, "H", 0, 50)
	e.publish(cmds...)
	base := len(e.slack.Messages(slackstandin.MessageFilter{}))
	testkit.Eventually(t, 30*time.Second, func() bool {
		return len(e.slack.Messages(slackstandin.MessageFilter{})) >= base+300
	}, "a third of the second batch posted")
	b.stop(t)
	waitOwned(t, a, testPartitions)
	e.shim.delay.Store(0)
	e.out.wait(t, 60*time.Second, ids...)
	for _, id := range ids {
		e.out.mustSucceed(t, id)
	}
	for _, team := range teams {
		for c := range teamChannels {
			ch := teamChannel(team, c)
			got := e.textsIn(ch)[50:]
			want := make([]string, 50)
			for i := range want {
				want[i] = fmt.Sprintf("H %s %d", ch, i)
			}
			if !slices.Equal(got, want) {
				t.Errorf("channel %s after the handover: first difference at %d of %d", ch, firstDiff(got, want), len(got))
			}
		}
	}
}

// TestReplicaKilledMidBatch: of two replicas, one (a separate process) is
// killed with SIGKILL in the middle of a batch, with posts Slack accepted
// still waiting for their answer. Its partitions pass to the other replica
// once their leases expire, and its held commands at once (the consumer
// rewound, not their AckWait of a minute waited out): nothing is lost,
// nothing posted twice, every channel keeps its order, and the posts whose
// answers were lost are found in history.
func TestReplicaKilledMidBatch(t *testing.T) {
	t.Parallel()
	const ackWait = time.Minute
	e := newEnv(t, envOptions{ackWait: ackWait})
	a := e.start(e.config())
	waitOwned(t, a, testPartitions)
	child := e.startChild(t)
	waitOwned(t, a, testPartitions/2) // the child holds the other half

	org := e.orgAcross(t, "org-kill", a.addrs.Instance)
	e.setAccess(org, true, teams...)
	// Slack answers each accepted post after 40ms: the kill always finds
	// some of the child's posts accepted and unanswered.
	e.shim.delay.Store(int64(40 * time.Millisecond))
	cmds, ids := batch(org, "K", 0, 50)
	e.publish(cmds...)
	testkit.Eventually(t, 30*time.Second, func() bool { return e.shim.accepted() >= 300 }, "300 posts accepted")
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	killed := time.Now()
	t.Logf("killed the child with %d posts in Slack and %d outcomes reported", e.shim.accepted(), e.out.count())

	waitOwned(t, a, testPartitions)
	t.Logf("its partitions taken over after %s", time.Since(killed).Round(time.Millisecond))
	e.shim.delay.Store(int64(time.Millisecond))
	// The in-flight posts wait out their ledger claims (SlackTimeout × 1.5),
	// well inside the AckWait.
	e.out.wait(t, ackWait-time.Since(killed)-5*time.Second, ids...)
	t.Logf("every outcome in %s after the kill", time.Since(killed).Round(time.Millisecond))
	for _, id := range ids {
		checkPermalink(t, e.out.mustSucceed(t, id))
	}
	e.checkChannels(t, "K", 50)
	found := a.metric("crmslack_delivery_reconciled_total", "result", "found")
	t.Logf("posts found in history after the kill: %v", found)
	if found == 0 {
		t.Error("no post was recovered from history: the kill did not hit posts in flight")
	}
}

// TestUpgradeFromOneInstance: SLACK_OUT as the one-instance layout left it
// (no transform, the consumer delivery-commands part-way through). The
// first replica takes the unsettled commands over, into their partitions,
// before any partition starts; a service that later reconciles SLACK_OUT
// without the transform is caught: the commands stored meanwhile are moved
// too and the transform is restored. Nothing is lost, nothing posted twice,
// the order is kept.
func TestUpgradeFromOneInstance(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	ctx := testkit.Context(t)
	// plain reconciles SLACK_OUT as the one-instance layout (and a service
	// built with an older libs/topology) did: without the transform.
	plain := func() {
		t.Helper()
		for _, sc := range topology.Streams(topology.StreamOptions{}) {
			if sc.Name == topology.StreamSlackOut {
				sc.SubjectTransform = nil
				if _, err := e.bus.EnsureStream(ctx, sc); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	plain()
	const org = "org-upgrade"
	e.setAccess(org, true, teams...)
	legacy, err := e.js.CreateOrUpdateConsumer(ctx, topology.StreamSlackOut, jetstream.ConsumerConfig{
		Durable: delivery.Durable, AckPolicy: jetstream.AckExplicitPolicy, AckWait: 30 * time.Second,
		MaxDeliver: 20, MaxAckPending: 20000, FilterSubjects: []string{"slack.out.v1.>"},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Ten rounds were published; the old instance had settled the first
	// two (it posted them, so they are not expected again).
	cmds, ids := batch(org, "U", 0, 10)
	e.publish(cmds...)
	msgs, err := legacy.Fetch(40)
	if err != nil {
		t.Fatal(err)
	}
	for m := range msgs.Messages() {
		_ = m.Ack()
	}
	testkit.Eventually(t, 5*time.Second, func() bool {
		info, err := legacy.Info(ctx)
		return err == nil && info.AckFloor.Consumer == 40
	}, "the old instance's acks recorded")

	e.start(e.config())
	more, moreIDs := batch(org, "U", 10, 10)
	e.publish(more...)
	e.out.wait(t, 60*time.Second, append(ids[40:], moreIDs...)...)
	for _, id := range ids[:40] {
		if s, f := e.out.get(id); len(s)+len(f) != 0 {
			t.Errorf("command %s, settled by the old instance, was carried out again", id)
		}
	}
	if _, err := e.js.Consumer(ctx, topology.StreamSlackOut, delivery.Durable); err == nil {
		t.Error("the one-instance consumer is still there")
	}

	// Once the backlog is moved, the transform is applied.
	restored(t, e)

	// A service with an older topology reconciles SLACK_OUT.
	plain()
	if s, err := e.js.Stream(ctx, topology.StreamSlackOut); err != nil || partition.CountOf(s.CachedInfo().Config) != 0 {
		t.Fatalf("the stream kept its transform (%v)", err)
	}
	stray, strayIDs := batch(org, "U", 20, 5)
	e.publish(stray...)
	e.out.wait(t, 60*time.Second, strayIDs...)
	restored(t, e)
	last, lastIDs := batch(org, "U", 25, 5)
	e.publish(last...)
	e.out.wait(t, 60*time.Second, lastIDs...)

	for _, team := range teams {
		for c := range teamChannels {
			ch := teamChannel(team, c)
			want := make([]string, 0, 28)
			for i := 2; i < 30; i++ {
				want = append(want, fmt.Sprintf("U %s %d", ch, i))
			}
			if got := e.textsIn(ch); !slices.Equal(got, want) {
				t.Errorf("channel %s: got %q, want %q", ch, got, want)
			}
		}
	}
}

// restored waits until SLACK_OUT has its partition transform.
func restored(t *testing.T, e *env) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, func() bool {
		s, err := e.js.Stream(testkit.Context(t), topology.StreamSlackOut)
		return err == nil && partition.CountOf(s.CachedInfo().Config) == testPartitions
	}, "the partition transform applied")
}
