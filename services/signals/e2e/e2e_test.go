package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/slackstandin"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/testkit/harness"
	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	signalsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/signals/v1"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"
)

const (
	call = crmv1.SignalChannel_SIGNAL_CHANNEL_CALL
	chat = crmv1.SignalChannel_SIGNAL_CHANNEL_CHAT
)

// One stack serves every case, in order: they share the org's matrix.
func TestSignals(t *testing.T) {
	s := startStack(t, options{})
	t.Run("missed call reaches the owner when phone/missed is on, not when off", s.testMissedCallToggle)
	t.Run("five chat signals within the window are one grouped message", s.testChatBurst)
	t.Run("a duplicate event posts once", s.testDuplicate)
	t.Run("an owner without Slack is reported once", s.testUnreachable)
	t.Run("owner's team preference is used", s.testOwnerTeam)
	t.Run("settings API: admins only, unknown cells refused, reset", s.testSettingsAPI)
	t.Run("a restart keeps groups, settings and exactly once", s.testRestart)
}

func (s *stack) testRestart(t *testing.T) {
	t0 := time.Now()
	first := signal(chat, "missed", "rs-chat", aliceEmail, t0)
	s.publish(t, first)
	testkit.Eventually(t, 20*time.Second, func() bool { return len(forCustomer(s.posts(alice), "rs-chat")) == 1 }, "the first signal is posted")
	s.setCell(t, call, "incoming", true)

	s.stopSignals()
	// While the service is down: the same signal again, two more from the
	// customer within the window, and an incoming call (on since before).
	later := []*crmv1.SalesSignal{
		signal(chat, "missed", "rs-chat", aliceEmail, t0.Add(5*time.Second)),
		signal(chat, "missed", "rs-chat", aliceEmail, t0.Add(10*time.Second)),
		signal(call, "incoming", "rs-call", aliceEmail, t0.Add(10*time.Second)),
	}
	s.publish(t, later...)
	subj, _ := topology.SubjectFor(first)
	harness.Republish(t, s.js, subj, first, "replay-"+first.GetEnvelope().GetEventId())
	s.runSignals(t)

	testkit.Eventually(t, 20*time.Second, func() bool {
		all := forCustomer(s.standin.Messages(slackstandin.MessageFilter{User: alice}), "rs-chat")
		return len(all) > 0 && strings.Contains(all[len(all)-1].Text, "3 signals")
	}, "after the restart the customer's message lists three signals")
	testkit.Eventually(t, 20*time.Second, func() bool { return len(forCustomer(s.posts(alice), "rs-call")) == 1 }, "the incoming call (its cell on before the restart) is posted")
	s.barrier(t)
	if n := len(forCustomer(s.posts(alice), "rs-chat")); n != 1 {
		t.Fatalf("after the restart %d posts for the customer, want the one grouped message", n)
	}
}

// barrier publishes an enabled signal to hank and waits for it: the
// signals consumer handles events in stream order, so everything published
// before has been decided once it arrives.
func (s *stack) barrier(t *testing.T) {
	t.Helper()
	before := len(s.posts(hank))
	s.publish(t, signal(chat, "missed", "barrier-"+newID(), hankEmail, time.Now()))
	if _, err := s.standin.WaitForMessages(testkit.Context(t), before+1, slackstandin.MessageFilter{User: hank, Kind: slackstandin.KindMessage}); err != nil {
		t.Fatal(err)
	}
}

func forCustomer(ms []slackstandin.Message, customer string) []slackstandin.Message {
	var out []slackstandin.Message
	for _, m := range ms {
		if strings.Contains(m.Text, "Customer "+customer) {
			out = append(out, m)
		}
	}
	return out
}

func (s *stack) testMissedCallToggle(t *testing.T) {
	ctx := testkit.Context(t)
	// The default: "Missed" under "Call" is ticked.
	got, err := s.settings.GetSettings(ctx, &signalsv1.GetSettingsRequest{OrgId: org})
	if err != nil {
		t.Fatal(err)
	}
	if !cell(t, got.GetSettings(), call, "missed").GetSlack() {
		t.Fatal("call/missed is not on by default")
	}

	s.publish(t, signal(call, "missed", "m-on", aliceEmail, time.Now()))
	msgs, err := s.standin.WaitForMessages(ctx, 1, slackstandin.MessageFilter{User: alice, Kind: slackstandin.KindMessage})
	if err != nil {
		t.Fatal(err)
	}
	m := forCustomer(msgs, "m-on")
	if len(m) != 1 || m[0].Team != acme || !strings.HasPrefix(m[0].Channel, "D") {
		t.Fatalf("missed call: want one DM to Alice in Acme, got %+v", msgs)
	}
	for _, want := range []string{`"tel:+15550100"`, `"Open in CRM"`, `"Call back"`, "Missed call", "!date^"} {
		if !strings.Contains(string(m[0].Blocks), want) {
			t.Errorf("the message lacks %s: %s", want, m[0].Blocks)
		}
	}

	// Off over gRPC: the next missed call posts nothing.
	s.setCell(t, call, "missed", false)
	s.publish(t, signal(call, "missed", "m-off", aliceEmail, time.Now()))
	s.barrier(t)
	if m := forCustomer(s.posts(alice), "m-off"); len(m) != 0 {
		t.Fatalf("a missed call was posted with call/missed off: %+v", m)
	}
	if n := s.counter(t, "crmslack_signals_handled_total", map[string]string{"result": "disabled"}); n < 1 {
		t.Errorf("disabled signals counted %v", n)
	}

	// On again: the next one reaches Alice.
	s.setCell(t, call, "missed", true)
	s.publish(t, signal(call, "missed", "m-on-again", aliceEmail, time.Now()))
	testkit.Eventually(t, 20*time.Second, func() bool { return len(forCustomer(s.posts(alice), "m-on-again")) == 1 }, "the missed call after re-enabling reaches Alice")
}

func cell(t *testing.T, st *signalsv1.Settings, ch crmv1.SignalChannel, kind string) *signalsv1.Cell {
	t.Helper()
	for _, c := range st.GetCells() {
		if c.GetChannel() == ch && c.GetKind() == kind {
			return c
		}
	}
	t.Fatalf("no cell %s/%s in %v", ch, kind, st)
	return nil
}

func (s *stack) testChatBurst(t *testing.T) {
	t0 := time.Now()
	var evs []*crmv1.SalesSignal
	for i := range 5 {
		evs = append(evs, signal(chat, "started", "burst", aliceEmail, t0.Add(time.Duration(i)*10*time.Second)))
	}
	s.publish(t, evs...)
	// The message ends up listing all five, updated in place.
	var last slackstandin.Message
	testkit.Eventually(t, 20*time.Second, func() bool {
		all := forCustomer(s.standin.Messages(slackstandin.MessageFilter{User: alice}), "burst")
		if len(all) == 0 {
			return false
		}
		last = all[len(all)-1]
		return strings.Contains(last.Text, "5 signals")
	}, "the grouped message lists five signals")
	s.barrier(t)
	posts := forCustomer(s.posts(alice), "burst")
	if len(posts) != 1 {
		t.Fatalf("five chat signals made %d posts, want 1: %+v", len(posts), posts)
	}
	if last.Kind != slackstandin.KindUpdate || last.TS != posts[0].TS || last.Channel != posts[0].Channel {
		t.Fatalf("the grouped message was not updated in place: post %s/%s, last %s %s/%s", posts[0].Channel, posts[0].TS, last.Kind, last.Channel, last.TS)
	}
	var blocks []map[string]any
	if err := json.Unmarshal(last.Blocks, &blocks); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(last.Blocks), "• "); n != 5 {
		t.Errorf("the grouped message lists %d signals, want 5: %s", n, last.Blocks)
	}
	if !strings.Contains(string(last.Blocks), `"Reply"`) {
		t.Errorf("chat signals with a URL get a Reply button: %s", last.Blocks)
	}
}

func (s *stack) testDuplicate(t *testing.T) {
	ev := signal(call, "missed", "dup", aliceEmail, time.Now())
	// Published twice: the stream drops the second inside its window.
	s.publish(t, ev)
	s.publish(t, ev)
	// Published again past the stream's dedupe (another message id), as a
	// replay or a republish after the window would: the service drops it.
	subj, _ := topology.SubjectFor(ev)
	harness.Republish(t, s.js, subj, ev, "replay-"+ev.GetEnvelope().GetEventId())
	s.barrier(t)
	testkit.Eventually(t, 20*time.Second, func() bool { return len(forCustomer(s.posts(alice), "dup")) >= 1 }, "the signal is posted")
	s.barrier(t)
	if n := len(forCustomer(s.posts(alice), "dup")); n != 1 {
		t.Fatalf("a signal delivered twice was posted %d times", n)
	}
	if n := len(forCustomer(s.standin.Messages(slackstandin.MessageFilter{User: alice, Kind: slackstandin.KindUpdate}), "dup")); n != 0 {
		t.Fatalf("a duplicate signal updated the message %d times", n)
	}
	if n := s.counter(t, "crmslack_signals_handled_total", map[string]string{"result": "duplicate"}); n < 1 {
		t.Errorf("duplicates counted %v", n)
	}
}

func (s *stack) testUnreachable(t *testing.T) {
	ctx := testkit.Context(t)
	reports, err := s.js.OrderedConsumer(ctx, topology.StreamIntegration, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{topology.SignalOwnerUnreachable(org)},
	})
	if err != nil {
		t.Fatal(err)
	}
	nobody := "nobody@acme.example"
	for i := range 3 {
		s.publish(t, signal(call, "missed", "lost-"+string(rune('a'+i)), nobody, time.Now()))
	}
	s.barrier(t)
	var got []*signalsv1.SignalOwnerUnreachable
	testkit.Eventually(t, 10*time.Second, func() bool {
		batch, err := reports.FetchNoWait(10)
		if err != nil {
			return false
		}
		for m := range batch.Messages() {
			r := &signalsv1.SignalOwnerUnreachable{}
			if err := proto.Unmarshal(m.Data(), r); err != nil {
				t.Fatal(err)
			}
			got = append(got, r)
		}
		return len(got) >= 1
	}, "the unreachable owner is reported")
	s.barrier(t)
	if batch, err := reports.FetchNoWait(10); err == nil {
		for range batch.Messages() {
			got = append(got, nil)
		}
	}
	if len(got) != 1 || got[0].GetOwner().GetEmail() != nobody || len(got[0].GetTeamIds()) != 2 {
		t.Fatalf("want one report of %s after searching both teams, got %v", nobody, got)
	}
	if n := s.counter(t, "crmslack_signals_handled_total", map[string]string{"result": "owner_unreachable"}); n != 3 {
		t.Errorf("unreachable signals counted %v, want 3", n)
	}
	if n := s.counter(t, "crmslack_signals_owners_unreachable_total", nil); n != 1 {
		t.Errorf("unreachable owners counted %v, want 1", n)
	}
}

func (s *stack) testOwnerTeam(t *testing.T) {
	ctx := testkit.Context(t)
	// Hank is only in Globex; his choice of Acme finds nobody there, so the
	// search goes on to Globex and finds him.
	if _, err := s.settings.SetOwnerTeam(ctx, &signalsv1.SetOwnerTeamRequest{
		OrgId: org, OwnerId: "crm-" + hankEmail, TeamId: acme,
		Caller: &teamsv1.Caller{User: &commonv1.CrmUserRef{Id: "crm-" + hankEmail}},
	}); err != nil {
		t.Fatal(err)
	}
	s.publish(t, signal(call, "missed", "pref", hankEmail, time.Now()))
	testkit.Eventually(t, 20*time.Second, func() bool {
		m := forCustomer(s.posts(hank), "pref")
		return len(m) == 1 && m[0].Team == globex
	}, "Hank is notified in Globex")
	// Somebody else may not choose for Hank.
	_, err := s.settings.SetOwnerTeam(ctx, &signalsv1.SetOwnerTeamRequest{
		OrgId: org, OwnerId: "crm-" + hankEmail, TeamId: globex,
		Caller: &teamsv1.Caller{User: &commonv1.CrmUserRef{Id: "crm-bob"}},
	})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("someone else choosing Hank's team: %v, want PermissionDenied", err)
	}
}

func (s *stack) testSettingsAPI(t *testing.T) {
	ctx := testkit.Context(t)
	notAdmin := &teamsv1.Caller{User: &commonv1.CrmUserRef{Id: "crm-bob"}}
	_, err := s.settings.UpdateCells(ctx, &signalsv1.UpdateCellsRequest{OrgId: org, Caller: notAdmin,
		Cells: []*signalsv1.Cell{{Channel: call, Kind: "missed", Slack: false}}})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("a non-admin changing the matrix: %v, want PermissionDenied", err)
	}
	_, err = s.settings.UpdateCells(ctx, &signalsv1.UpdateCellsRequest{OrgId: org, Caller: admin,
		Cells: []*signalsv1.Cell{{Channel: call, Kind: "voicemail", Slack: true}}})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "missed, incoming, outgoing") {
		t.Fatalf("an unknown cell: %v, want InvalidArgument naming the channel's kinds", err)
	}
	cur, err := s.settings.GetSettings(ctx, &signalsv1.GetSettingsRequest{OrgId: org})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.settings.ReplaceMatrix(ctx, &signalsv1.ReplaceMatrixRequest{OrgId: org, Caller: admin, ExpectedVersion: cur.GetSettings().GetVersion() + 100,
		Cells: []*signalsv1.Cell{{Channel: chat, Kind: "missed", Slack: true}}})
	if status.Code(err) != codes.Aborted {
		t.Fatalf("a stale expected_version: %v, want Aborted", err)
	}
	rep, err := s.settings.ReplaceMatrix(ctx, &signalsv1.ReplaceMatrixRequest{OrgId: org, Caller: admin, ExpectedVersion: cur.GetSettings().GetVersion(),
		Cells: []*signalsv1.Cell{{Channel: chat, Kind: "missed", Slack: true}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.GetSettings().GetCells() {
		if want := c.GetChannel() == chat && c.GetKind() == "missed"; c.GetSlack() != want {
			t.Errorf("after ReplaceMatrix %s/%s = %v, want %v", c.GetChannel(), c.GetKind(), c.GetSlack(), want)
		}
	}
	reset, err := s.settings.ResetSettings(ctx, &signalsv1.ResetSettingsRequest{OrgId: org, Caller: admin})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range reset.GetSettings().GetCells() {
		if c.GetSlack() != c.GetDefaultSlack() {
			t.Errorf("after reset %s/%s = %v, default %v", c.GetChannel(), c.GetKind(), c.GetSlack(), c.GetDefaultSlack())
		}
	}
	if reset.GetSettings().GetOwnerTeams()["crm-"+hankEmail] != acme {
		t.Errorf("reset dropped the owners' team choices: %v", reset.GetSettings().GetOwnerTeams())
	}
}
