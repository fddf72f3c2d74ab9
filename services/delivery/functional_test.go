package delivery_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/identity"
	"github.com/crmslack/crmslack/libs/slackstandin"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/topology"
	deliveryv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/delivery/v1"
	integrationv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/integration/v1"
	slackv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/slack/v1"

	"github.com/crmslack/crmslack/services/delivery/internal/partition"
)

// TestRetryAfterPausesOnlyThatChannel: delivery paces far faster than Slack
// allows (a misconfiguration, or Slack lowering a limit); every 429's
// Retry-After is waited out on that channel only, while other channels go
// on, and nothing is lost, duplicated or reordered.
func TestRetryAfterPausesOnlyThatChannel(t *testing.T) {
	t.Parallel()
	const org = "org-429"
	// Slack allows 5 a second on each channel; delivery is told 5000.
	e := newEnv(t, envOptions{channel: slackstandin.Limit{Rate: 5, Burst: 5}})
	e.setAccess(org, true, acme)
	cfg := e.config()
	cfg.ChannelRate, cfg.ChannelBurst = 5000, 500
	e.start(cfg)

	var limited, others []string
	var cmds []bus.Event
	for i := range 20 {
		c := postTo(org, acme, loadChannel(0), fmt.Sprintf("R %d", i))
		cmds = append(cmds, c)
		limited = append(limited, c.GetEnvelope().GetEventId())
	}
	for ch := 1; ch <= 20; ch++ {
		for i := range 4 {
			c := postTo(org, acme, loadChannel(ch), fmt.Sprintf("O %d %d", ch, i))
			cmds = append(cmds, c)
			others = append(others, c.GetEnvelope().GetEventId())
		}
	}
	start := time.Now()
	e.publish(cmds...)
	e.out.wait(t, 30*time.Second, others...)
	othersDone := time.Since(start)
	e.out.wait(t, 30*time.Second, limited...)
	limitedDone := time.Since(start)

	n429 := e.shim.checkRetryAfterHonoured(t)
	t.Logf("%d 429s; other channels done after %s, the limited one after %s", n429, othersDone, limitedDone)
	if n429 == 0 {
		t.Fatal("no 429: the test did not exercise Retry-After")
	}
	// 20 messages at 5/s need three pauses of a second at least; the
	// other channels (4 messages each, within their burst) are not paused.
	if othersDone > limitedDone/2 {
		t.Errorf("other channels took %s of the limited channel's %s: its pauses held them up", othersDone, limitedDone)
	}
	if n := e.slack.Stats().RateLimitedChannels; len(n) != 1 {
		t.Errorf("429s on channels %v, want on the limited one only", n)
	}
	want := make([]string, 20)
	for i := range want {
		want[i] = fmt.Sprintf("R %d", i)
	}
	if got := e.textsIn(loadChannel(0)); !slices.Equal(got, want) {
		t.Errorf("limited channel got %q", got)
	}
	for _, id := range append(limited, others...) {
		e.out.mustSucceed(t, id)
	}
}

// TestServerErrorsRetriedThenDeadLettered: 5xx answers are retried with
// back-off; a command that keeps failing ends with RETRIES_EXHAUSTED and a
// dead letter after the configured attempts, not before.
func TestServerErrorsRetriedThenDeadLettered(t *testing.T) {
	t.Parallel()
	const org = "org-5xx"
	e := newEnv(t, envOptions{})
	e.setAccess(org, true, acme)
	cfg := e.config()
	cfg.MaxAttempts = 4
	r := e.start(cfg)

	e.slack.InjectFailures("chat.postMessage", 2, 503)
	ok := postTo(org, acme, acmeGeneral, "after two 503s")
	e.publish(ok)
	e.out.wait(t, 10*time.Second, ok.GetEnvelope().GetEventId())
	if s := e.out.mustSucceed(t, ok.GetEnvelope().GetEventId()); s.GetAttempts() != 3 {
		t.Errorf("attempts = %d, want 3", s.GetAttempts())
	}

	e.slack.InjectFailures("chat.postMessage", 100, 502)
	bad := postTo(org, acme, acmeGeneral, "never")
	e.publish(bad)
	e.out.wait(t, 10*time.Second, bad.GetEnvelope().GetEventId())
	f := e.out.mustFail(t, bad.GetEnvelope().GetEventId())
	if f.GetCode() != integrationv1.DeliveryFailureCode_DELIVERY_FAILURE_CODE_RETRIES_EXHAUSTED || f.GetAttempts() != 4 {
		t.Errorf("failure %s after %d attempts (%s), want RETRIES_EXHAUSTED after 4", f.GetCode(), f.GetAttempts(), f.GetReason())
	}
	if got := e.slack.Stats().Injected["chat.postMessage"]; got != 2+4 {
		t.Errorf("%d failing calls, want 6 (2, then 4 attempts)", got)
	}
	letters := deadLetters(t, e.js)
	if len(letters) != 1 || !strings.Contains(letters[0].Headers().Get(bus.HeaderDLQReason), "RETRIES_EXHAUSTED") {
		t.Fatalf("dead letters: %d, want the one command with its reason", len(letters))
	}
	k := partition.Of(org, acme, testPartitions)
	if h := letters[0].Headers(); h.Get(bus.HeaderDLQConsumer) != partition.Durable(k) || letters[0].Subject() != bus.DeadLetterSubject("SLACK_OUT", partition.Durable(k)) ||
		h.Get(bus.HeaderDLQSubject) != subjectOf(bad)+"."+strconv.Itoa(k) || h.Get(bus.HeaderDLQOriginalMsgID) != bad.GetEnvelope().GetEventId() {
		t.Errorf("dead letter %s with headers %v", letters[0].Subject(), h)
	}
	if got := r.metric("crmslack_delivery_slack_calls_total", "method", "chat.postMessage", "result", "temporary"); got != 6 {
		t.Errorf("metric counts %v temporary failures, want 6", got)
	}
	e.slack.InjectFailures("chat.postMessage", 0, 502)
}

func deadLetters(t *testing.T, js jetstream.JetStream) []jetstream.Msg {
	t.Helper()
	ctx := testkit.Context(t)
	cons, err := js.OrderedConsumer(ctx, bus.DeadLetterStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for {
		m, err := cons.Next(jetstream.FetchMaxWait(300 * time.Millisecond))
		if err != nil {
			return out
		}
		out = append(out, m)
	}
}

// TestTokenRefusedRefreshOnceNeverLoop: a revoked token is reported to the
// registry once; with a refreshed token the post goes out; when the
// registry has none, the command fails with AUTH after that one report.
func TestTokenRefusedRefreshOnceNeverLoop(t *testing.T) {
	t.Parallel()
	const org = "org-auth"
	e := newEnv(t, envOptions{})
	e.setAccess(org, true, acme)
	e.start(e.config())

	warm := postTo(org, acme, acmeGeneral, "warm")
	e.publish(warm)
	e.out.wait(t, 10*time.Second, warm.GetEnvelope().GetEventId())

	e.slack.RevokeTeam(acme) // the cached token now answers token_revoked
	refreshed := postTo(org, acme, acmeGeneral, "with a new token")
	e.publish(refreshed)
	e.out.wait(t, 10*time.Second, refreshed.GetEnvelope().GetEventId())
	e.out.mustSucceed(t, refreshed.GetEnvelope().GetEventId())
	if got := e.teams.reported(); !slices.Equal(got, []string{acme + ":token_revoked"}) {
		t.Errorf("reports = %q, want one token_revoked", got)
	}

	e.teams.mu.Lock()
	e.teams.refresh = false
	e.teams.mu.Unlock()
	e.slack.RevokeTeam(acme)
	broken := postTo(org, acme, acmeGeneral, "no token left")
	e.publish(broken)
	e.out.wait(t, 10*time.Second, broken.GetEnvelope().GetEventId())
	f := e.out.mustFail(t, broken.GetEnvelope().GetEventId())
	if f.GetCode() != integrationv1.DeliveryFailureCode_DELIVERY_FAILURE_CODE_AUTH {
		t.Errorf("code %s, want AUTH", f.GetCode())
	}
	if got := e.teams.reported(); len(got) != 2 {
		t.Errorf("reports = %q, want exactly one more", got)
	}
	if strings.Contains(f.GetReason(), "xox") {
		t.Errorf("reason leaks a token: %s", f.GetReason())
	}
}

// TestIdempotencyKey: a command republished with a new event id but the
// same idempotency key posts once; its outcome says duplicate and names the
// first post.
func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	const org = "org-idem"
	e := newEnv(t, envOptions{})
	e.setAccess(org, true, acme)
	e.setAccess("org-idem-2", true, acme)
	e.start(e.config())

	first := postTo(org, acme, acmeGeneral, "once")
	first.IdempotencyKey = "share:deal-42:C0ACMEGNRL"
	e.publish(first)
	e.out.wait(t, 10*time.Second, first.GetEnvelope().GetEventId())
	again := postTo(org, acme, acmeGeneral, "once")
	again.IdempotencyKey = first.IdempotencyKey
	e.publish(again)
	// The same event id again is dropped by the stream itself.
	e.publish(first)
	e.out.wait(t, 10*time.Second, again.GetEnvelope().GetEventId())

	s1 := e.out.mustSucceed(t, first.GetEnvelope().GetEventId())
	s2 := e.out.mustSucceed(t, again.GetEnvelope().GetEventId())
	if s1.GetDuplicate() || !s2.GetDuplicate() || s2.GetTs() != s1.GetTs() || s2.GetChannelId() != s1.GetChannelId() {
		t.Errorf("first %v/%s, second %v/%s: want the second to replay the first as a duplicate", s1.GetDuplicate(), s1.GetTs(), s2.GetDuplicate(), s2.GetTs())
	}
	if got := e.textsIn(acmeGeneral); len(got) != 1 {
		t.Errorf("posted %d times", len(got))
	}
	// The same key in another org is another message.
	other := postTo("org-idem-2", acme, acmeGeneral, "once")
	other.IdempotencyKey = first.IdempotencyKey
	e.publish(other)
	e.out.wait(t, 10*time.Second, other.GetEnvelope().GetEventId())
	if s := e.out.mustSucceed(t, other.GetEnvelope().GetEventId()); s.GetDuplicate() {
		t.Error("another org's command with the same key was treated as a duplicate")
	}
}

// TestMessageKinds: updates, ephemeral messages, response_url replies and
// file uploads; Block Kit checked before sending.
func TestMessageKinds(t *testing.T) {
	t.Parallel()
	const org = "org-kinds"
	e := newEnv(t, envOptions{})
	e.setAccess(org, true, acme)
	e.start(e.config())

	// A post, then its update, in order.
	post := postTo(org, acme, acmeSales, "Deal won")
	post.BlocksJson = []byte(`[{"type":"header","text":{"type":"plain_text","text":"Deal won"}}]`)
	e.publish(post)
	e.out.wait(t, 10*time.Second, post.GetEnvelope().GetEventId())
	posted := e.out.mustSucceed(t, post.GetEnvelope().GetEventId())
	update := &slackv1.UpdateMessage{Envelope: newEnvelope(org), TeamId: acme, ChannelId: posted.GetChannelId(), Ts: posted.GetTs(), Text: "Deal won — $50k"}
	eph := &slackv1.PostEphemeral{Envelope: newEnvelope(org), TeamId: acme, ChannelId: acmeSales, SlackUserId: "U0ACME0BOB", Text: "only you"}
	tooBig := postTo(org, acme, acmeSales, "")
	tooBig.BlocksJson = []byte(`[{"type":"section","text":{"type":"mrkdwn","text":"` + strings.Repeat("x", 3001) + `"}}]`)
	noFallback := postTo(org, acme, acmeSales, "")
	noFallback.BlocksJson = []byte(`[{"type":"divider"}]`)
	derived := postTo(org, acme, acmeSales, "")
	derived.BlocksJson = []byte(`[{"type":"section","text":{"type":"mrkdwn","text":"derived fallback"}}]`)

	respURL := e.slack.NewResponseURL(acme, acmeSales, "U0ACME0ALC")
	var responds []*slackv1.RespondToURL
	for i := range 6 {
		responds = append(responds, &slackv1.RespondToURL{
			Envelope: newEnvelope(org), TeamId: acme, ResponseUrl: respURL, ResponseType: slackv1.ResponseType_RESPONSE_TYPE_EPHEMERAL,
			Text: fmt.Sprintf("reply %d", i),
		})
	}
	evil := &slackv1.RespondToURL{Envelope: newEnvelope(org), TeamId: acme, ResponseUrl: "https://attacker.example/hook", Text: "CRM data"}
	upload := &slackv1.UploadFile{
		Envelope: newEnvelope(org), TeamId: acme, Filename: "pipeline.png", Title: "Pipeline", ContentType: "image/png",
		Content: []byte("\x89PNG fake chart"), InitialComment: "Q3 pipeline",
		Targets: []*slackv1.Target{channelTarget(acmeSales), {Kind: &slackv1.Target_Email{Email: "carol@acme.example"}}},
	}
	cmds := []bus.Event{update, eph, tooBig, noFallback, derived, evil, upload}
	for _, r := range responds {
		cmds = append(cmds, r)
	}
	e.publish(cmds...)
	var ids []string
	for _, c := range cmds {
		ids = append(ids, c.GetEnvelope().GetEventId())
	}
	e.out.wait(t, 20*time.Second, ids...)

	e.out.mustSucceed(t, update.GetEnvelope().GetEventId())
	msgs := e.slack.Messages(slackstandin.MessageFilter{Channel: acmeSales})
	kinds := []slackstandin.MessageKind{}
	for _, m := range msgs {
		kinds = append(kinds, m.Kind)
	}
	// The update follows its post; replies through the response_url go
	// by another lane and may land in between.
	updateAt := slices.IndexFunc(msgs, func(m slackstandin.Message) bool { return m.Kind == slackstandin.KindUpdate })
	postAt := slices.IndexFunc(msgs, func(m slackstandin.Message) bool { return m.Kind == slackstandin.KindMessage })
	if updateAt < 0 || postAt < 0 || updateAt < postAt || msgs[updateAt].Text != "Deal won — $50k" {
		t.Errorf("update not applied after the post: %v", kinds)
	}
	e.out.mustSucceed(t, eph.GetEnvelope().GetEventId())
	if got := e.slack.Messages(slackstandin.MessageFilter{Kind: slackstandin.KindEphemeral, User: "U0ACME0BOB"}); len(got) != 1 {
		t.Errorf("%d ephemeral messages for Bob", len(got))
	}
	for _, c := range []*slackv1.PostMessage{tooBig, noFallback} {
		if f := e.out.mustFail(t, c.GetEnvelope().GetEventId()); f.GetCode() != integrationv1.DeliveryFailureCode_DELIVERY_FAILURE_CODE_INVALID_MESSAGE {
			t.Errorf("invalid message: %s %s", f.GetCode(), f.GetReason())
		}
	}
	e.out.mustSucceed(t, derived.GetEnvelope().GetEventId())

	// response_url: five uses, the sixth refused before it is sent.
	var used, expired int
	for _, r := range responds {
		s, f := e.out.get(r.GetEnvelope().GetEventId())
		switch {
		case len(s) == 1:
			used++
		case len(f) == 1 && f[0].GetCode() == integrationv1.DeliveryFailureCode_DELIVERY_FAILURE_CODE_RESPONSE_URL_EXPIRED:
			expired++
		}
	}
	if used != 5 || expired != 1 {
		t.Errorf("response_url: %d used, %d expired; want 5 and 1", used, expired)
	}
	if got := e.slack.Messages(slackstandin.MessageFilter{Kind: slackstandin.KindResponseURL}); len(got) != 5 {
		t.Errorf("%d response_url replies reached Slack, want 5", len(got))
	}
	if f := e.out.mustFail(t, evil.GetEnvelope().GetEventId()); f.GetCode() != integrationv1.DeliveryFailureCode_DELIVERY_FAILURE_CODE_INVALID_MESSAGE {
		t.Errorf("foreign response_url: %s", f.GetCode())
	}

	up := e.out.mustSucceed(t, upload.GetEnvelope().GetEventId())
	files := e.slack.Files()
	if len(files) != 1 || len(up.GetFileIds()) != 1 || files[0].ID != up.GetFileIds()[0] {
		t.Fatalf("files %+v, outcome %v", files, up.GetFileIds())
	}
	f := files[0]
	if string(f.Content) != "\x89PNG fake chart" || f.InitialComment != "Q3 pipeline" || len(f.Channels) != 2 || f.Channels[0] != acmeSales || !strings.HasPrefix(f.Channels[1], "D") {
		t.Errorf("uploaded file: channels %v, comment %q, %d bytes", f.Channels, f.InitialComment, len(f.Content))
	}
}

// TestAuditTrail: every outcome is in the audit trail, listed by org, time
// range and status, a page at a time.
func TestAuditTrail(t *testing.T) {
	t.Parallel()
	const org = "org-audit"
	e := newEnv(t, envOptions{})
	e.setAccess(org, true, acme)
	r := e.start(e.config())

	var cmds []bus.Event
	var ids []string
	for i := range 25 {
		c := postTo(org, acme, acmeGeneral, fmt.Sprintf("A %d", i))
		if i%5 == 0 {
			c.TeamId, c.Envelope.EventId = globex, c.Envelope.EventId+"-g" // not registered: fails
		}
		cmds = append(cmds, c)
		ids = append(ids, c.GetEnvelope().GetEventId())
	}
	other := postTo("org-audit-other", acme, acmeGeneral, "someone else's")
	cmds = append(cmds, other)
	begin := time.Now().Add(-time.Second)
	e.publish(cmds...)
	e.out.wait(t, 20*time.Second, append(ids, other.GetEnvelope().GetEventId())...)

	// The CRM asks, with an admin credential of the org each request names.
	client := deliveryv1.NewDeliveryAuditServiceClient(testkit.CRMConn(t, e.pki, identity.Delivery, r.addrs.GRPC))
	ctx := testkit.Context(t)
	list := func(req *deliveryv1.ListDeliveriesRequest) []*deliveryv1.Delivery {
		t.Helper()
		var all []*deliveryv1.Delivery
		for {
			resp, err := client.ListDeliveries(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, resp.GetDeliveries()...)
			if resp.GetNextPageToken() == "" {
				return all
			}
			req.PageToken = resp.GetNextPageToken()
		}
	}
	// Rows are written in batches shortly after the outcomes.
	testkit.Eventually(t, 10*time.Second, func() bool {
		return len(list(&deliveryv1.ListDeliveriesRequest{OrgId: org})) == 25
	}, "25 audit rows for the org")

	all := list(&deliveryv1.ListDeliveriesRequest{OrgId: org, PageSize: 7})
	seen := map[string]bool{}
	for i, d := range all {
		if seen[d.GetCommandId()] {
			t.Errorf("command %s listed twice across pages", d.GetCommandId())
		}
		seen[d.GetCommandId()] = true
		if i > 0 && d.GetCompletedAt().AsTime().After(all[i-1].GetCompletedAt().AsTime()) {
			t.Errorf("row %d is newer than the row before it", i)
		}
		if d.GetOrgId() != org || d.GetKind() != "post" || d.GetRequestedAt() == nil {
			t.Errorf("row %+v", d)
		}
	}
	failed := list(&deliveryv1.ListDeliveriesRequest{OrgId: org, Status: deliveryv1.DeliveryStatus_DELIVERY_STATUS_FAILED})
	succeeded := list(&deliveryv1.ListDeliveriesRequest{OrgId: org, Status: deliveryv1.DeliveryStatus_DELIVERY_STATUS_SUCCEEDED})
	if len(failed) != 5 || len(succeeded) != 20 {
		t.Errorf("%d failed and %d succeeded rows, want 5 and 20", len(failed), len(succeeded))
	}
	for _, d := range succeeded {
		if d.GetChannelId() != acmeGeneral || d.GetTs() == "" {
			t.Errorf("succeeded row without channel and ts: %+v", d)
		}
	}
	for _, d := range failed {
		if d.GetFailureCode() != integrationv1.DeliveryFailureCode_DELIVERY_FAILURE_CODE_TEAM_NOT_REGISTERED || d.GetReason() == "" {
			t.Errorf("failed row %+v", d)
		}
	}
	if got := list(&deliveryv1.ListDeliveriesRequest{OrgId: org, From: timestamppb.New(begin.Add(-time.Hour)), To: timestamppb.New(begin)}); len(got) != 0 {
		t.Errorf("%d rows before the batch", len(got))
	}
	if got := list(&deliveryv1.ListDeliveriesRequest{OrgId: org, From: timestamppb.New(begin), To: timestamppb.New(time.Now().Add(time.Minute))}); len(got) != 25 {
		t.Errorf("%d rows in the batch's time range, want 25", len(got))
	}
	// A request naming no org has no CRM credential to carry: refused first.
	if _, err := client.ListDeliveries(ctx, &deliveryv1.ListDeliveriesRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("ListDeliveries without an org = %v, want Unauthenticated", err)
	}
	for _, bad := range []*deliveryv1.ListDeliveriesRequest{{OrgId: org, PageToken: "garbage"}, {OrgId: org, From: timestamppb.Now(), To: timestamppb.New(time.Now().Add(-time.Hour))}} {
		if _, err := client.ListDeliveries(ctx, bad); status.Code(err) != codes.InvalidArgument {
			t.Errorf("ListDeliveries(%v) = %v, want InvalidArgument", bad, err)
		}
	}
}

// TestLostAnswer: Slack accepts a post but its answer never arrives (the
// call times out). The retry does not post blindly: it finds the post in
// the channel's history by its marker. When history cannot be read (the
// bot lacks the *:history scopes) the policy decides: at most once (fail,
// the default) or at least once.
func TestLostAnswer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		history     bool
		policy      string
		wantPosts   int
		wantSuccess bool
	}{
		{"found in history", true, "fail", 1, true},
		{"no history, at most once", false, "fail", 1, false},
		{"no history, at least once", false, "repost", 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			org := "org-lost"
			e := newEnv(t, envOptions{})
			e.setAccess(org, true, acme)
			if !tc.history { // a bot that may not read channels back
				e.teams.scopes = withoutHistory(slackstandin.DefaultBotScopes())
			}
			cfg := e.config()
			cfg.SlackTimeout = 300 * time.Millisecond
			cfg.Unconfirmed = deliveryPolicy(tc.policy)
			r := e.start(cfg)

			e.shim.delay.Store(int64(time.Second)) // answers come after the timeout
			c := postTo(org, acme, acmeGeneral, "lost answer")
			e.publish(c)
			testkit.Eventually(t, 10*time.Second, func() bool { return e.shim.accepted() >= 1 }, "the post accepted")
			e.shim.delay.Store(0)
			e.out.wait(t, 20*time.Second, c.GetEnvelope().GetEventId())

			s, f := e.out.get(c.GetEnvelope().GetEventId())
			if tc.wantSuccess != (len(s) == 1) || len(s)+len(f) != 1 {
				t.Fatalf("%d succeeded, %d failed; want success=%v", len(s), len(f), tc.wantSuccess)
			}
			if !tc.wantSuccess && f[0].GetCode() != integrationv1.DeliveryFailureCode_DELIVERY_FAILURE_CODE_SLACK_ERROR {
				t.Errorf("failure %s: %s", f[0].GetCode(), f[0].GetReason())
			}
			if got := len(e.textsIn(acmeGeneral)); got != tc.wantPosts {
				t.Errorf("%d posts in Slack, want %d", got, tc.wantPosts)
			}
			if tc.history {
				if got := r.metric("crmslack_delivery_reconciled_total", "result", "found"); got != 1 {
					t.Errorf("reconciled found = %v, want 1", got)
				}
				if s[0].GetTs() != e.slack.Messages(slackstandin.MessageFilter{Channel: acmeGeneral})[0].TS {
					t.Error("the outcome does not carry the ts of the post found in history")
				}
				checkPermalink(t, s[0])
			}
		})
	}
}

// withoutHistory drops the scopes conversations.history needs.
func withoutHistory(scopes []string) []string {
	return slices.DeleteFunc(scopes, func(s string) bool { return strings.HasSuffix(s, ":history") })
}

// TestMaxDeliveriesAdvisory: when the server gives up on a command (its
// deliveries all ended without a verdict), one replica of the queue group
// dead-letters it under its partition's consumer and reports it failed,
// once however often the advisory comes.
func TestMaxDeliveriesAdvisory(t *testing.T) {
	t.Parallel()
	const org = "org-maxdeliver"
	e := newEnv(t, envOptions{})
	e.setAccess(org, true, acme)
	e.start(e.config())
	e.start(e.config())

	// A command in a partition no consumer reads, so only the advisory
	// acts on it.
	cmd := postTo(org, acme, acmeGeneral, "never delivered")
	ack, err := e.bus.Publish(testkit.Context(t), subjectOf(cmd)+".99", cmd)
	if err != nil {
		t.Fatal(err)
	}
	for _, consumer := range []string{partition.Durable(3), partition.Durable(3), partition.UnpartitionedDurable} {
		adv, _ := json.Marshal(map[string]any{"stream": "SLACK_OUT", "consumer": consumer, "stream_seq": ack.Sequence, "deliveries": 20})
		if err := e.nc.Publish("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.SLACK_OUT."+consumer, adv); err != nil {
			t.Fatal(err)
		}
	}
	id := cmd.GetEnvelope().GetEventId()
	e.out.wait(t, 10*time.Second, id)
	f := e.out.mustFail(t, id)
	if f.GetCode() != integrationv1.DeliveryFailureCode_DELIVERY_FAILURE_CODE_RETRIES_EXHAUSTED || f.GetAttempts() != 20 {
		t.Errorf("failure %s after %d attempts", f.GetCode(), f.GetAttempts())
	}
	letters := deadLetters(t, e.js)
	if len(letters) != 1 || letters[0].Subject() != bus.DeadLetterSubject(topology.StreamSlackOut, partition.Durable(3)) {
		t.Errorf("%d dead letters, want one on %s", len(letters), bus.DeadLetterSubject(topology.StreamSlackOut, partition.Durable(3)))
	}
}
