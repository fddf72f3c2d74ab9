package delivery_test

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/services/delivery"
)

// TestKilledMidBatch kills a delivery process with SIGKILL in the middle of
// a batch, while posts Slack has already accepted are still waiting for
// their answer, and starts delivery again on the same NATS and MongoDB.
// Nothing is lost, nothing is posted twice, every channel keeps its order,
// and the posts whose answers were lost are found in the channels' history
// (the stand-in's conversations.history, by the marker in each post's
// metadata) instead of being posted again. Every outcome carries the post's
// permalink, those found in history included.
func TestKilledMidBatch(t *testing.T) {
	t.Parallel()
	const (
		org      = "org-crash"
		channels = 20
		before   = 30 // per channel, published before the crash
		after    = 10 // per channel, published while delivery is down
	)
	e := newEnv(t, envOptions{})
	e.setAccess(org, true, acme)
	// Slack takes 60ms to answer each accepted post: a crash always finds
	// some posts accepted and unanswered.
	e.shim.delay.Store(int64(60 * time.Millisecond))

	text := func(ch, i int) string { return fmt.Sprintf("K %d %d", ch, i) }
	var ids []string
	var cmds []bus.Event
	for i := range before {
		for ch := range channels {
			c := postTo(org, acme, loadChannel(ch), text(ch, i))
			cmds = append(cmds, c)
			ids = append(ids, c.GetEnvelope().GetEventId())
		}
	}
	e.publish(cmds...)

	child := e.startChild(t)
	// Kill it once a third of the batch is in Slack.
	testkit.Eventually(t, 30*time.Second, func() bool {
		return e.shim.accepted() >= channels*before/3
	}, "a third of the batch posted by the child process")
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	postedBeforeCrash := e.shim.accepted()
	settledBeforeCrash := e.out.count()
	t.Logf("killed with %d posts in Slack and %d outcomes reported", postedBeforeCrash, settledBeforeCrash)
	if settledBeforeCrash >= postedBeforeCrash {
		t.Fatalf("no post was left unrecorded by the crash (%d posted, %d settled): the test proves nothing", postedBeforeCrash, settledBeforeCrash)
	}

	// New commands arrive while delivery is down.
	cmds = cmds[:0]
	for i := before; i < before+after; i++ {
		for ch := range channels {
			c := postTo(org, acme, loadChannel(ch), text(ch, i))
			cmds = append(cmds, c)
			ids = append(ids, c.GetEnvelope().GetEventId())
		}
	}
	e.publish(cmds...)

	e.shim.delay.Store(int64(5 * time.Millisecond))
	r := e.start(e.config())
	e.out.wait(t, 60*time.Second, ids...)

	for _, id := range ids {
		checkPermalink(t, e.out.mustSucceed(t, id))
	}
	for ch := range channels {
		want := make([]string, before+after)
		for i := range want {
			want[i] = text(ch, i)
		}
		if got := e.textsIn(loadChannel(ch)); !slices.Equal(got, want) {
			t.Errorf("channel %d: %d messages, want %d exactly once in order; first difference at %d: %q",
				ch, len(got), len(want), firstDiff(got, want), got)
		}
	}
	found := r.metric("crmslack_delivery_reconciled_total", "result", "found")
	t.Logf("posts found in history after the crash: %v", found)
	if found == 0 {
		t.Error("no post was recovered from history: the crash window was not exercised")
	}
}

// startChild starts delivery as a separate process (this test binary, see
// TestMain) on e's NATS, MongoDB, Slack and registry.
func (e *env) startChild(t *testing.T) *exec.Cmd {
	t.Helper()
	return e.startChildWith(t, e.config())
}

// startChildWith starts delivery as a separate process with cfg and the
// extra environment variables.
func (e *env) startChildWith(t testing.TB, cfg delivery.Config, extra ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), cfg.Files.Environ()...),
		childEnv+"=1",
		"NATS_URL="+cfg.NATSURL,
		"MONGODB_URI="+cfg.MongoURI,
		"TEAMS_ADDR="+cfg.TeamsAddr,
		"SLACK_API_URL="+cfg.SlackAPIURL,
		"DELIVERY_GRPC_ADDR=127.0.0.1:0",
		"DELIVERY_OPS_ADDR=127.0.0.1:0",
		"DELIVERY_CHANNEL_RATE="+strconv.FormatFloat(cfg.ChannelRate, 'f', -1, 64),
		"DELIVERY_CHANNEL_BURST="+strconv.Itoa(cfg.ChannelBurst),
		"DELIVERY_ACK_WAIT="+cfg.AckWait.String(),
		"DELIVERY_SLACK_TIMEOUT="+cfg.SlackTimeout.String(),
		"DELIVERY_BACKOFF_BASE="+cfg.BackoffBase.String(),
		"DELIVERY_BACKOFF_MAX="+cfg.BackoffMax.String(),
		"DELIVERY_PARTITIONS="+strconv.Itoa(cfg.Partitions),
		"DELIVERY_LEASE_TTL="+cfg.LeaseTTL.String(),
	)
	cmd.Env = append(cmd.Env, extra...)
	cmd.Stderr = tbWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}
