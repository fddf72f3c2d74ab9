package partition

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/topology"
)

// withTransform is sc with SLACK_OUT's transform for p partitions.
func withTransform(sc jetstream.StreamConfig, p int) jetstream.StreamConfig {
	sc.SubjectTransform = topology.SlackOutTransform(p)
	return sc
}

// slackOut creates a SLACK_OUT-like stream with the transform for p
// partitions on an embedded server.
func slackOut(t *testing.T, p int) jetstream.JetStream {
	t.Helper()
	js := testkit.JetStream(t, testkit.NATSConn(t, testkit.NATS(t)))
	cfg := jetstream.StreamConfig{Name: "SLACK_OUT", Subjects: []string{"slack.out.v1.>"}, Storage: jetstream.FileStorage}
	if _, err := js.CreateStream(testkit.Context(t), withTransform(cfg, p)); err != nil {
		t.Fatal(err)
	}
	return js
}

// TestOfMatchesServer: the server's {{partition(P,1,2)}} and Of agree, so
// the mover puts a command exactly where the transform would have.
func TestOfMatchesServer(t *testing.T) {
	t.Parallel()
	const p = 8
	js := slackOut(t, p)
	ctx := testkit.Context(t)
	type pair struct{ org, team string }
	var pairs []pair
	for i := range 40 {
		pairs = append(pairs, pair{fmt.Sprintf("org-%d", i), fmt.Sprintf("T%08d", i*7919)})
	}
	pairs = append(pairs, pair{"a", "bc"}, pair{"ab", "c"}, pair{"6f1c0e4a-long-org-id-with-dashes", "T0ACME0001"})
	seen := map[int]bool{}
	for _, pr := range pairs {
		ack, err := js.Publish(ctx, "slack.out.v1."+pr.org+"."+pr.team+".post", []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		s, err := js.Stream(ctx, "SLACK_OUT")
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.GetMsg(ctx, ack.Sequence)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("slack.out.v1.%s.%s.post.%d", pr.org, pr.team, Of(pr.org, pr.team, p))
		if m.Subject != want {
			t.Errorf("stored as %s, Of says %s", m.Subject, want)
		}
		moved, err := Partitioned("slack.out.v1."+pr.org+"."+pr.team+".post", p)
		if err != nil || moved != want {
			t.Errorf("Partitioned = %q, %v; want %q", moved, err, want)
		}
		seen[Of(pr.org, pr.team, p)] = true
	}
	if len(seen) != p {
		t.Errorf("43 teams fell in %d of %d partitions", len(seen), p)
	}
	// A subject already partitioned is not transformed again.
	ack, err := js.Publish(ctx, "slack.out.v1.o.T1.post.3", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	s, _ := js.Stream(ctx, "SLACK_OUT")
	if m, err := s.GetMsg(ctx, ack.Sequence); err != nil || m.Subject != "slack.out.v1.o.T1.post.3" {
		t.Errorf("a partitioned subject was stored as %v (%v)", m, err)
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	if CountOf(withTransform(jetstream.StreamConfig{}, 16)) != 16 || CountOf(jetstream.StreamConfig{}) != 0 {
		t.Error("CountOf does not read the transform back")
	}
	if TransformSource != topology.SlackOutTransform(1).Source || UnpartitionedFilter != TransformSource {
		t.Errorf("TransformSource %q is not topology's %q", TransformSource, topology.SlackOutTransform(1).Source)
	}
	for _, sc := range topology.Streams(topology.StreamOptions{SlackOutPartitions: 5}) {
		if sc.Name == topology.StreamSlackOut && CountOf(sc) != 5 {
			t.Errorf("CountOf(topology's SLACK_OUT for 5) = %d", CountOf(sc))
		}
	}
	if DefaultCount != topology.SlackOutPartitions {
		t.Errorf("DefaultCount %d, topology says %d", DefaultCount, topology.SlackOutPartitions)
	}
	if Durable(3) != "delivery-p3" || Filter(3) != "slack.out.v1.*.*.*.3" {
		t.Errorf("names: %s %s", Durable(3), Filter(3))
	}
	for name, want := range map[string]int{"delivery-p0": 0, "delivery-p12": 12} {
		if k, ok := FromDurable(name); !ok || k != want {
			t.Errorf("FromDurable(%s) = %d, %v", name, k, ok)
		}
	}
	for _, name := range []string{"delivery-p", "delivery-p01", "delivery-p-1", "delivery-commands", UnpartitionedDurable} {
		if _, ok := FromDurable(name); ok {
			t.Errorf("FromDurable(%s) accepted", name)
		}
	}
	for _, bad := range []string{"slack.out.v1.o.T.post.1", "slack.out.v1.o.T", "crm.v1.o.T.post.x"} {
		if _, err := Partitioned(bad, 8); err == nil {
			t.Errorf("Partitioned(%s) accepted", bad)
		}
	}
	if got := replicaKey("host.example-1/2"); got != "replica.host_example-1_2" {
		t.Errorf("replicaKey = %s", got)
	}
}

// TestMover: commands stored without a partition (published before the
// transform, after the one-instance consumer's ack floor) are moved into
// their partitions in order, once, and the one-instance consumer is gone.
func TestMover(t *testing.T) {
	t.Parallel()
	const p = 4
	js := testkit.JetStream(t, testkit.NATSConn(t, testkit.NATS(t)))
	ctx := testkit.Context(t)
	cfg := jetstream.StreamConfig{Name: "SLACK_OUT", Subjects: []string{"slack.out.v1.>"}, Storage: jetstream.FileStorage, Duplicates: time.Minute}
	if _, err := js.CreateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	legacy, err := js.CreateOrUpdateConsumer(ctx, "SLACK_OUT", jetstream.ConsumerConfig{
		Durable: LegacyDurable, AckPolicy: jetstream.AckExplicitPolicy, FilterSubjects: []string{"slack.out.v1.>"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if _, err := js.Publish(ctx, fmt.Sprintf("slack.out.v1.org-%d.T%d.post", i%3, i%3), []byte(fmt.Sprint(i)), jetstream.WithMsgID(fmt.Sprint("evt-", i))); err != nil {
			t.Fatal(err)
		}
	}
	// The old instance settled the first four.
	batch, err := legacy.Fetch(4)
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		_ = m.Ack()
	}
	testkit.Eventually(t, 5*time.Second, func() bool {
		info, err := legacy.Info(ctx)
		return err == nil && info.AckFloor.Stream == 4
	}, "the old instance's acks recorded")
	if _, err := js.UpdateStream(ctx, withTransform(cfg, p)); err != nil {
		t.Fatal(err)
	}

	mc := MoverConfig{Stream: "SLACK_OUT", Partitions: p, AckWait: 2 * time.Second, MaxDeliver: 5}
	if n, err := Backlog(ctx, js, "SLACK_OUT"); err != nil || n != 6 {
		t.Fatalf("backlog before the mover = %d, %v; want the old consumer's 6", n, err)
	}
	cons, err := EnsureMover(ctx, js, mc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Consumer(ctx, "SLACK_OUT", LegacyDurable); err == nil {
		t.Error("the one-instance consumer is still there")
	}
	if _, err := EnsureMover(ctx, js, mc); err != nil { // idempotent
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Move(runCtx, js, cons, mc) }()
	testkit.Eventually(t, 10*time.Second, func() bool {
		n, err := Backlog(ctx, js, "SLACK_OUT")
		return err == nil && n == 0
	}, "the backlog moved")
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	s, _ := js.Stream(ctx, "SLACK_OUT")
	var moved []string
	for seq := uint64(11); seq <= 16; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		moved = append(moved, string(m.Data))
		toks := strings.Split(m.Subject, ".")
		if len(toks) != 7 || m.Header.Get(jetstream.MsgIDHeader) != fmt.Sprintf("%s%d", MovedMsgIDPrefix, seq-6) {
			t.Errorf("moved message %s with id %q", m.Subject, m.Header.Get(jetstream.MsgIDHeader))
		}
	}
	if got := strings.Join(moved, ","); got != "4,5,6,7,8,9" {
		t.Errorf("moved %s, want 4..9 in order", got)
	}
	if info, _ := s.Info(ctx); info.State.LastSeq != 16 {
		t.Errorf("stream ends at %d: something was moved twice or not at all", info.State.LastSeq)
	}
}
