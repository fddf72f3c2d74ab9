package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	remindersv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/reminders/v1"
	slackv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/slack/v1"
)

// lead is how far ahead reminders are set in these tests: long enough for
// the event to be handled first, short enough to keep tests quick.
const lead = 2 * time.Second

// onTime is the tolerance on "fires at its time": the server checks
// timers at most every 250 ms; the handling adds milliseconds.
const onTime = time.Second

func TestReminderFiresOnceOnTime(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.start(options{})
	r.enable(t, alice, aliceE)
	due := time.Now().Add(lead)
	e.publish(e.scheduled(meeting("ev-1", 1, due)))

	got := e.out.waitPosts(t, 1, 10*time.Second)
	if late := got[0].at.Sub(due); late < -100*time.Millisecond || late > onTime {
		t.Errorf("posted %v after its due time, want within %v", late, onTime)
	}
	p := got[0].post
	if p.GetIdempotencyKey() != "reminder/acme-crm/ev-1/v1/15/crm-alice" || p.GetTeamId() != team || p.GetTarget().GetEmail() != aliceE {
		t.Errorf("post %+v", p)
	}
	if !strings.Contains(p.GetText(), `"Demo ev-1" starts in 15 minutes`) {
		t.Errorf("text %q", p.GetText())
	}
	e.out.quiet(t, 1, 2*time.Second)
	if n := e.timers(topology.ReminderActivityTimers(org, "ev-1")); n != 0 {
		t.Errorf("%d timers left after firing", n)
	}
}

func TestThreeReplicasFireEachReminderOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rs := []*replica{e.start(options{}), e.start(options{}), e.start(options{})}
	rs[0].enable(t, alice, aliceE)
	rs[1].enable(t, bob, bobE)
	const n = 30
	due := time.Now().Add(lead)
	var evs []bus.Event
	for i := range n {
		// Events go to whichever replica; each activity reminds two people.
		evs = append(evs, e.scheduled(meeting(fmt.Sprintf("ev-%d", i), 1, due, &commonv1.CrmUserRef{Id: bob, Email: bobE})))
	}
	e.publish(evs...)
	e.out.waitPosts(t, 2*n, 15*time.Second)
	e.out.quiet(t, 2*n, 2*time.Second)
	keys := map[string]bool{}
	for _, s := range e.out.snapshot() {
		if keys[s.post.GetIdempotencyKey()] {
			t.Errorf("%s posted twice", s.post.GetIdempotencyKey())
		}
		keys[s.post.GetIdempotencyKey()] = true
	}
	var handled float64
	for _, r := range rs {
		handled += r.metric("crmslack_reminders_sent_total")
	}
	if handled != 2*n {
		t.Errorf("replicas sent %v reminders in all, want %d (each fired and handled once)", handled, 2*n)
	}
}

func TestRescheduleFiresOnlyAtTheNewTime(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.start(options{})
	r.enable(t, alice, aliceE)
	first := time.Now().Add(lead)
	e.publish(e.scheduled(meeting("ev-1", 1, first)))
	moved := first.Add(2 * time.Second)
	e.publish(e.updated(meeting("ev-1", 2, moved)))
	// An older update arriving late changes nothing.
	e.publish(e.updated(meeting("ev-1", 1, first)))

	got := e.out.waitPosts(t, 1, 10*time.Second)
	if got[0].at.Before(moved.Add(-100*time.Millisecond)) || got[0].at.After(moved.Add(onTime)) {
		t.Errorf("posted at %v, want at the new time %v (first was %v)", got[0].at, moved, first)
	}
	if k := got[0].post.GetIdempotencyKey(); !strings.Contains(k, "/v2/") {
		t.Errorf("posted %s, want version 2", k)
	}
	e.out.quiet(t, 1, 2*time.Second)
}

func TestCancelledOrCompletedNeverFires(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.start(options{})
	r.enable(t, alice, aliceE)
	due := time.Now().Add(lead)
	e.publish(e.scheduled(meeting("ev-1", 1, due)), e.scheduled(meeting("ev-2", 1, due)))
	testkit.Eventually(t, 5*time.Second, func() bool { return e.timers(topology.ReminderActivityTimers(org, "*")) == 2 }, "two timers set")
	e.publish(
		&crmv1.ActivityCancelled{Envelope: e.envelope(), ActivityId: "ev-1", Kind: crmv1.ActivityKind_ACTIVITY_KIND_EVENT, Version: 2},
		&crmv1.ActivityCompleted{Envelope: e.envelope(), ActivityId: "ev-2", Kind: crmv1.ActivityKind_ACTIVITY_KIND_EVENT, Version: 2},
	)
	testkit.Eventually(t, 5*time.Second, func() bool { return e.timers(topology.ReminderActivityTimers(org, "*")) == 0 }, "timers removed")
	// A late, older update does not bring it back.
	e.publish(e.updated(meeting("ev-1", 1, due)))
	e.out.quiet(t, 0, time.Until(due)+2*time.Second)
}

func TestRestartBetweenSchedulingAndFiringLosesNothing(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		down     time.Duration // how long after the due time the service is back
		offset   int32         // the reminder's minutes before the start
		wantPost bool
		wantLate bool
	}{
		{"back before the due time", -time.Second, 15, true, false},
		{"back after the due time, before the start: sent, marked late", 2 * time.Second, 15, true, true},
		{"back after the start: dropped and counted", 2 * time.Second, 0, false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			opts := options{lateAfter: time.Second}
			r := e.start(opts)
			r.enable(t, alice, aliceE)
			due := time.Now().Add(3 * time.Second)
			a := meeting("ev-1", 1, due)
			a.ReminderMinutesBefore = []int32{tc.offset}
			a.StartAt = timestamppb.New(due.Add(time.Duration(tc.offset) * time.Minute))
			e.publish(e.scheduled(a))
			testkit.Eventually(t, 5*time.Second, func() bool { return e.timers(topology.ReminderActivityTimers(org, "ev-1")) == 1 }, "timer set")
			r.stop(t)

			time.Sleep(time.Until(due.Add(tc.down)))
			back := e.start(opts)
			if !tc.wantPost {
				testkit.Eventually(t, 10*time.Second, func() bool {
					return back.metric("crmslack_reminders_dropped_total", "reason", "started") == 1
				}, "the reminder dropped as started")
				e.out.quiet(t, 0, time.Second)
				return
			}
			got := e.out.waitPosts(t, 1, 10*time.Second)
			if late := strings.HasPrefix(got[0].post.GetText(), "Late reminder"); late != tc.wantLate {
				t.Errorf("late = %v, want %v: %q", late, tc.wantLate, got[0].post.GetText())
			}
			e.out.quiet(t, 1, time.Second)
		})
	}
}

func TestPreferenceTurnedOffStopsPendingReminders(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.start(options{})
	r.enable(t, alice, aliceE)
	r.enable(t, bob, bobE)
	due := time.Now().Add(3 * time.Second)
	e.publish(e.scheduled(meeting("ev-1", 1, due, &commonv1.CrmUserRef{Id: bob, Email: bobE})))
	testkit.Eventually(t, 5*time.Second, func() bool { return e.timers(topology.ReminderActivityTimers(org, "ev-1")) == 2 }, "two timers set")

	_, err := r.prefs.SetPreferences(testkit.Context(t), &remindersv1.SetPreferencesRequest{
		OrgId: org, User: &commonv1.CrmUserRef{Id: bob, Email: bobE}, Enabled: false,
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := e.timers(topology.ReminderUserTimers(org, bob)); n != 0 {
		t.Errorf("%d timers of bob left", n)
	}
	got := e.out.waitPosts(t, 1, 10*time.Second)
	if got[0].post.GetTarget().GetEmail() != aliceE {
		t.Errorf("posted to %v", got[0].post.GetTarget())
	}
	e.out.quiet(t, 1, 2*time.Second)
	p, err := r.prefs.GetPreferences(testkit.Context(t), &remindersv1.GetPreferencesRequest{OrgId: org, CrmUserId: bob})
	if err != nil || p.GetPreferences().GetEnabled() {
		t.Errorf("bob's preferences %v, %v", p, err)
	}
}

func TestTurningRemindersOnSchedulesUpcomingActivities(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.start(options{})
	due := time.Now().Add(3 * time.Second)
	e.publish(e.scheduled(meeting("ev-1", 1, due)), e.scheduled(meeting("ev-2", 1, time.Now().Add(-time.Minute))))
	testkit.Eventually(t, 5*time.Second, func() bool {
		st, err := e.js.KeyValue(testkit.Context(t), topology.BucketReminderPeople)
		if err != nil {
			return false
		}
		_, err1 := st.Get(testkit.Context(t), org+"."+alice+".ev-1")
		_, err2 := st.Get(testkit.Context(t), org+"."+alice+".ev-2")
		return err1 == nil && err2 == nil
	}, "the activities known, with reminders off")
	if n := e.timers(topology.ReminderActivityTimers(org, "*")); n != 0 {
		t.Fatalf("%d timers while reminders are off", n)
	}
	r.enable(t, alice, aliceE)
	got := e.out.waitPosts(t, 1, 10*time.Second)
	if k := got[0].post.GetIdempotencyKey(); !strings.Contains(k, "/ev-1/") {
		t.Errorf("posted %s; the reminder of ev-2 was due before reminders were on", k)
	}
	e.out.quiet(t, 1, time.Second)
}

func TestPreferencesRefuseATeamOutsideTheOrg(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.start(options{})
	cases := []struct {
		name string
		req  *remindersv1.SetPreferencesRequest
		code codes.Code
	}{
		{"another org's team", &remindersv1.SetPreferencesRequest{OrgId: org, User: &commonv1.CrmUserRef{Id: alice, Email: aliceE}, Enabled: true, TeamId: other}, codes.FailedPrecondition},
		{"no team", &remindersv1.SetPreferencesRequest{OrgId: org, User: &commonv1.CrmUserRef{Id: alice, Email: aliceE}, Enabled: true}, codes.InvalidArgument},
		{"no email", &remindersv1.SetPreferencesRequest{OrgId: org, User: &commonv1.CrmUserRef{Id: alice}, Enabled: true, TeamId: team}, codes.InvalidArgument},
		{"bad time zone", &remindersv1.SetPreferencesRequest{OrgId: org, User: &commonv1.CrmUserRef{Id: alice, Email: aliceE}, Enabled: true, TeamId: team, TimeZone: "Mars/Base"}, codes.InvalidArgument},
		{"bad user id", &remindersv1.SetPreferencesRequest{OrgId: org, User: &commonv1.CrmUserRef{Id: "a.b"}}, codes.InvalidArgument},
	}
	for _, tc := range cases {
		_, err := r.prefs.SetPreferences(testkit.Context(t), tc.req)
		if status.Code(err) != tc.code {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.code)
		}
	}
	p, err := r.prefs.GetPreferences(testkit.Context(t), &remindersv1.GetPreferencesRequest{OrgId: org, CrmUserId: alice})
	if err != nil || p.GetPreferences().GetEnabled() {
		t.Errorf("reminders must be off until turned on: %v, %v", p, err)
	}
}

// button finds a button's value in a posted reminder.
func button(t testing.TB, p *slackv1.PostMessage, actionID string) string {
	t.Helper()
	var blocks []struct {
		Elements []struct {
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
		} `json:"elements"`
	}
	if err := json.Unmarshal(p.GetBlocksJson(), &blocks); err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		for _, el := range b.Elements {
			if el.ActionID == actionID {
				return el.Value
			}
		}
	}
	t.Fatalf("no %s button in %s", actionID, p.GetBlocksJson())
	return ""
}

// click publishes a verified block_actions click as the gateway does.
func (e *env) click(actionID, value string) {
	e.t.Helper()
	ev := &slackv1.InteractionReceived{
		Envelope: e.envelope(), TeamId: team, ChannelId: "D0ALICE001", UserId: "U0ACME0ALC",
		ActionId: actionID, Value: value, ResponseUrl: "https://hooks.slack.com/actions/T0ACME0001/1/x",
	}
	ev.Envelope.EventId = "slack-interaction:" + ev.Envelope.EventId
	if err := e.bus.PublishBatch(testkit.Context(e.t), []bus.Published{{Subject: topology.SlackInteraction(team), Event: ev}}); err != nil {
		e.t.Fatal(err)
	}
}

func TestSnoozeFiresAgainAfterTheSnooze(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const snooze = 2 * time.Second // 10 minutes, scaled
	r := e.start(options{snooze: snooze})
	r.enable(t, alice, aliceE)
	e.publish(e.scheduled(meeting("ev-1", 1, time.Now().Add(lead))))
	first := e.out.waitPosts(t, 1, 10*time.Second)[0]
	if !strings.Contains(string(first.post.GetBlocksJson()), "Snooze 2s") {
		t.Errorf("no snooze button label: %s", first.post.GetBlocksJson())
	}

	clicked := time.Now()
	e.click("reminder_snooze", button(t, first.post, "reminder_snooze"))
	got := e.out.waitPosts(t, 2, 10*time.Second)
	if d := got[1].at.Sub(clicked); d < snooze-100*time.Millisecond || d > snooze+onTime {
		t.Errorf("snoozed reminder came %v after the click, want %v", d, snooze)
	}
	if k := got[1].post.GetIdempotencyKey(); k != "reminder/acme-crm/ev-1/v1/15s1/crm-alice" {
		t.Errorf("snoozed key %s", k)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return len(e.out.responds()) == 1 }, "the click answered")
	if txt := e.out.responds()[0].GetText(); !strings.HasPrefix(txt, "Snoozed: I'll remind you again at ") {
		t.Errorf("answer %q", txt)
	}
	e.out.quiet(t, 2, time.Second)
}

func TestMarkDoneAsksTheCRMToCloseTheTask(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.start(options{})
	r.enable(t, alice, aliceE)
	task := meeting("task-1", 3, time.Now().Add(lead))
	task.Kind = crmv1.ActivityKind_ACTIVITY_KIND_TASK
	e.publish(e.scheduled(task))
	post := e.out.waitPosts(t, 1, 10*time.Second)[0].post

	cmds := watchCommands(t, e)
	value := button(t, post, "reminder_done")
	e.click("reminder_done", value)
	e.click("reminder_done", value) // a second click: the same command
	testkit.Eventually(t, 10*time.Second, func() bool { return len(cmds.get()) >= 1 }, "the CRM command")
	time.Sleep(500 * time.Millisecond)
	got := cmds.get()
	if len(got) != 1 {
		t.Fatalf("%d commands, want 1", len(got))
	}
	c := got[0]
	if c.GetActivityId() != "task-1" || c.GetVersion() != 3 || c.GetRequestedBy().GetId() != alice || c.GetSlackTeamId() != team {
		t.Errorf("command %+v", c)
	}
}

// commands collects the CRM commands reminders sends.
type commands struct {
	mu   sync.Mutex
	cmds []*crmv1.CompleteActivityRequested
}

func (c *commands) get() []*crmv1.CompleteActivityRequested {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*crmv1.CompleteActivityRequested(nil), c.cmds...)
}

func watchCommands(t testing.TB, e *env) *commands {
	t.Helper()
	c := &commands{}
	cons, err := e.js.OrderedConsumer(testkit.Context(t), topology.StreamCRM, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{topology.ActivityCommand(org, "complete")},
	})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var cmd crmv1.CompleteActivityRequested
		if err := proto.Unmarshal(m.Data(), &cmd); err == nil {
			c.mu.Lock()
			c.cmds = append(c.cmds, &cmd)
			c.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return c
}
