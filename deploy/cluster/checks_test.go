package cluster

import (
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/identity"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/slackstandin"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/topology"
	slackv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/slack/v1"
)

// checkReplicated: the shared streams and buckets are on three nodes.
func checkReplicated(t *testing.T, c *Cluster) {
	t.Helper()
	// Each stream read by a service that may (libs/natsauth's table).
	for s, user := range map[string]string{topology.StreamCRM: identity.Query, topology.StreamSlackOut: identity.Delivery, "KV_" + topology.BucketOrgAccess: identity.Teams} {
		st, err := observer(t, c, user).Stream(testkit.Context(t), s)
		if err != nil {
			t.Fatalf("stream %s: %v", s, err)
		}
		info, err := st.Info(testkit.Context(t))
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Fatalf("stream %s: replicas %d, cluster %+v; want R3 on three nodes", s, info.Config.Replicas, info.Cluster)
		}
	}
}

// checkExactlyOnce: every expected post once, where it belongs, and nothing
// else.
func checkExactlyOnce(t *testing.T, w workload, posts []slackstandin.Message) {
	t.Helper()
	count := map[string]int{}
	for _, m := range posts {
		mk := marker(m)
		if mk == "" {
			t.Errorf("an unexpected post in %s: %q", m.Channel, m.Text)
			continue
		}
		count[mk]++
		if where := w.posts[mk]; where != m.Channel && where != m.User {
			t.Errorf("%s posted in %s (user %q), want %s", mk, m.Channel, m.User, where)
		}
	}
	var missing, twice []string
	for mk := range w.posts {
		switch count[mk] {
		case 0:
			missing = append(missing, mk)
		case 1:
		default:
			twice = append(twice, fmt.Sprintf("%s ×%d", mk, count[mk]))
		}
	}
	sort.Strings(missing)
	sort.Strings(twice)
	if len(missing) > 0 || len(twice) > 0 {
		t.Fatalf("%d posts missing %v, %d posted more than once %v", len(missing), head(missing), len(twice), head(twice))
	}
}

func head(s []string) []string { return s[:min(len(s), 20)] }

// checkOrder: in each conversation, the posts of each target are in the
// order of their commands on SLACK_OUT (delivery's promise, across replicas
// and crashes). It returns when each marker's first command was stored on
// SLACK_OUT, which splits a post's wait into its producer's and delivery's.
func checkOrder(t *testing.T, c *Cluster, posts []slackstandin.Message) map[string]time.Time {
	t.Helper()
	js := observer(t, c, identity.Delivery)
	ctx := testkit.Context(t)
	st, err := js.Stream(ctx, topology.StreamSlackOut)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	seq := map[string]uint64{}  // marker → its first command's stream sequence
	lane := map[string]string{} // marker → its command's target, as addressed
	stored := map[string]time.Time{}
	for n := info.State.FirstSeq; n <= info.State.LastSeq; n++ {
		var msg *jetstream.RawStreamMsg
		testkit.Eventually(t, 30*time.Second, func() bool {
			msg, err = st.GetMsg(ctx, n)
			return err == nil
		}, "SLACK_OUT message %d: %v", n, err)
		var pm slackv1.PostMessage
		if msg.Header.Get(bus.HeaderType) != string(proto.MessageName(&pm)) {
			continue
		}
		if err := proto.Unmarshal(msg.Data, &pm); err != nil {
			t.Fatal(err)
		}
		if mk := marker(slackstandin.Message{Text: pm.GetText(), Blocks: pm.GetBlocksJson()}); mk != "" {
			if _, ok := seq[mk]; !ok {
				seq[mk], lane[mk], stored[mk] = n, pm.GetTarget().String(), msg.Time
			}
		}
	}
	// Delivery orders by the target as the command names it: a DM reached
	// by user id (signals) and by email (reminders) are two lanes.
	byChannel := map[string][]uint64{}
	for _, m := range posts {
		key := m.Channel + " " + lane[marker(m)]
		byChannel[key] = append(byChannel[key], seq[marker(m)])
	}
	for ch, seqs := range byChannel {
		if !slices.IsSorted(seqs) {
			for i := 1; i < len(seqs); i++ {
				if seqs[i] < seqs[i-1] {
					t.Errorf("%s: post %d is command %d on SLACK_OUT, after command %d: out of order", ch, i, seqs[i], seqs[i-1])
					break
				}
			}
		}
	}
	return stored
}
