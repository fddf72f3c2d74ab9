package lanes

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/testkit/harness"
	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

func setup(t *testing.T) *bus.Bus {
	t.Helper()
	return harness.Bus(t, testkit.NATS(t).ClientURL(), t.Name(), testkit.Logger(t))
}

func sig(owner string, i int) *crmv1.SalesSignal {
	return &crmv1.SalesSignal{
		Envelope: &commonv1.Envelope{EventId: fmt.Sprintf("%s-%d", owner, i), OrgId: "o"},
		Channel:  crmv1.SignalChannel_SIGNAL_CHANNEL_CALL, Kind: "missed", SignalId: fmt.Sprint(i),
		RecordOwner: &commonv1.CrmUserRef{Email: owner},
	}
}

func spec() bus.ConsumerSpec {
	return bus.ConsumerSpec{Stream: topology.StreamCRM, Durable: "lanes-test", FilterSubjects: []string{topology.SalesSignals}, AckWait: 5 * time.Second, MaxDeliver: 3}
}

func key(ev *crmv1.SalesSignal) string { return ev.GetRecordOwner().GetEmail() }

// Each owner's signals are handled in the order published, one at a time,
// while owners are handled side by side, even when handlers take varying
// times and fail now and then.
func TestOrderPerOwner(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const owners, per = 8, 40
	var mu sync.Mutex
	got := map[string][]int{}
	busy := map[string]bool{}
	var failed sync.Map
	h := func(ctx context.Context, ev *crmv1.SalesSignal) error {
		o := key(ev)
		mu.Lock()
		if busy[o] {
			mu.Unlock()
			t.Errorf("two signals of %s handled at once", o)
			return nil
		}
		busy[o] = true
		mu.Unlock()
		defer func() { mu.Lock(); busy[o] = false; mu.Unlock() }()
		time.Sleep(time.Duration(rand.N(2000)) * time.Microsecond)
		if _, again := failed.LoadOrStore(ev.GetEnvelope().GetEventId(), true); !again && rand.N(10) == 0 {
			return errors.New("a blip")
		}
		var i int
		fmt.Sscan(ev.GetSignalId(), &i)
		mu.Lock()
		got[o] = append(got[o], i)
		mu.Unlock()
		return nil
	}
	c, err := Start(testkit.Context(t), b, Config{Spec: spec(), Lanes: 4, Retry: []time.Duration{time.Millisecond}}, prometheus.NewRegistry(), testkit.Logger(t), key, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	var items []bus.Published
	for i := range per {
		for o := range owners {
			items = append(items, bus.Published{Subject: topology.SalesSignal("o", "call"), Event: sig(fmt.Sprintf("owner%d", o), i)})
		}
	}
	if err := b.PublishBatch(testkit.Context(t), items); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, l := range got {
			n += len(l)
		}
		return n == owners*per
	}, "every signal handled")
	mu.Lock()
	defer mu.Unlock()
	for o, l := range got {
		for i, v := range l {
			if v != i {
				t.Fatalf("%s's signals handled in order %v", o, l)
			}
		}
	}
}

// A permanent error and an undecodable message go to the dead-letter
// stream; the consumer goes on.
func TestDeadLetters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	done := make(chan string, 10)
	h := func(ctx context.Context, ev *crmv1.SalesSignal) error {
		if ev.GetSignalId() == "0" {
			return bus.Permanent(errors.New("no such cell"))
		}
		done <- ev.GetSignalId()
		return nil
	}
	c, err := Start(testkit.Context(t), b, Config{Spec: spec(), Lanes: 2}, prometheus.NewRegistry(), testkit.Logger(t), key, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	ctx := testkit.Context(t)
	if _, err := b.JetStream().Publish(ctx, topology.SalesSignal("o", "call"), []byte("not a protobuf \xff\xff")); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := b.Publish(ctx, topology.SalesSignal("o", "call"), sig("a", i)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case id := <-done:
		if id != "1" {
			t.Fatalf("handled %s", id)
		}
	case <-ctx.Done():
		t.Fatal("the good signal was not handled")
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		st, err := b.JetStream().Stream(ctx, bus.DeadLetterStream)
		if err != nil {
			return false
		}
		info, err := st.Info(ctx)
		return err == nil && info.State.Msgs == 2
	}, "two dead letters")
}
