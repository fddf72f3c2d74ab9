package timers

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/localnats"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/topology"
	remindersv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/reminders/v1"

	"github.com/crmslack/crmslack/services/reminders/internal/remind"
)

// These tests pin down what reminders relies on in the server's message
// schedules (nats-server 2.15, ADR-51), against the embedded server.

type fired struct {
	mu   sync.Mutex
	msgs []firedMsg
}

type firedMsg struct {
	at   time.Time
	due  *remindersv1.ReminderDue
	hdrs map[string]string
}

func (f *fired) get() []firedMsg {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]firedMsg(nil), f.msgs...)
}

func setup(t *testing.T) (*localnats.Server, *Timers, *fired) {
	t.Helper()
	ns := testkit.NATS(t)
	js := testkit.JetStream(t, testkit.NATSConn(t, ns))
	ctx := testkit.Context(t)
	if _, err := js.CreateStream(ctx, topology.RemindersStream(topology.StreamOptions{})); err != nil {
		t.Fatal(err)
	}
	ts, err := New(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	f := &fired{}
	c, err := js.CreateOrUpdateConsumer(ctx, topology.StreamReminders, jetstream.ConsumerConfig{
		Durable: "test", FilterSubject: topology.ReminderDue("o"), AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := c.Consume(func(m jetstream.Msg) {
		var d remindersv1.ReminderDue
		if err := proto.Unmarshal(m.Data(), &d); err != nil {
			t.Errorf("fired payload: %v", err)
		}
		h := map[string]string{}
		for k := range m.Headers() {
			h[k] = m.Headers().Get(k)
		}
		f.mu.Lock()
		f.msgs = append(f.msgs, firedMsg{at: time.Now(), due: &d, hdrs: h})
		f.mu.Unlock()
		_ = m.Ack()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return ns, ts, f
}

func timer(user string, at time.Time, version int64) remind.Timer {
	return remind.Timer{Slot: remind.Slot{User: user, Offset: 15}, Version: version, At: at}
}

func set(t *testing.T, ts *Timers, activity string, tm remind.Timer) {
	t.Helper()
	if err := ts.Set(context.Background(), "o", activity, tm, remind.Due("o", activity, tm, 15, tm.At, time.Now())); err != nil {
		t.Fatal(err)
	}
}

func TestTimerFiresOnceAtItsTimeWithItsPayload(t *testing.T) {
	t.Parallel()
	_, ts, f := setup(t)
	at := time.Now().Add(time.Second)
	set(t, ts, "a1", timer("u1", at, 3))
	testkit.Eventually(t, 5*time.Second, func() bool { return len(f.get()) == 1 }, "the timer fired")
	m := f.get()[0]
	if d := m.at.Sub(at); d < -50*time.Millisecond || d > time.Second {
		t.Errorf("fired %v after its time", d)
	}
	if m.due.GetVersion() != 3 || m.due.GetCrmUserId() != "u1" || m.hdrs[bus.HeaderType] != "crmslack.reminders.v1.ReminderDue" {
		t.Errorf("fired %+v with headers %v", m.due, m.hdrs)
	}
	if _, ok := m.hdrs["Nats-Msg-Id"]; ok {
		t.Error("the fired copy kept a Nats-Msg-Id")
	}
	time.Sleep(time.Second) // nothing fires twice
	if n := len(f.get()); n != 1 {
		t.Errorf("fired %d times", n)
	}
}

func TestSettingAgainReplacesAndRemovingCancels(t *testing.T) {
	t.Parallel()
	_, ts, f := setup(t)
	first := time.Now().Add(time.Second)
	set(t, ts, "a1", timer("u1", first, 1))
	set(t, ts, "a1", timer("u1", first.Add(time.Second), 2)) // replaces
	set(t, ts, "a2", timer("u1", first, 1))
	set(t, ts, "a3", timer("u2", first, 1))
	if err := ts.RemoveActivity(context.Background(), "o", "a2"); err != nil {
		t.Fatal(err)
	}
	if err := ts.RemoveUser(context.Background(), "o", "u2"); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return len(f.get()) == 1 }, "the replaced timer fired")
	time.Sleep(time.Second)
	got := f.get()
	if len(got) != 1 || got[0].due.GetActivityId() != "a1" || got[0].due.GetVersion() != 2 || got[0].at.Before(first.Add(time.Second-50*time.Millisecond)) {
		t.Fatalf("fired %+v", got)
	}
}

func TestTimersSurviveAServerRestart(t *testing.T) {
	t.Parallel()
	ns, ts, f := setup(t)
	at := time.Now().Add(2 * time.Second)
	set(t, ts, "a1", timer("u1", at, 1))
	ns.Shutdown()
	time.Sleep(time.Until(at.Add(500 * time.Millisecond))) // down when it was due
	if err := ns.Restart(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return len(f.get()) == 1 }, "the timer fired after the restart")
}
