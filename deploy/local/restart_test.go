package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/card"
	"github.com/crmslack/crmslack/libs/devpki"
	"github.com/crmslack/crmslack/libs/natsauth"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

// TestRestartKeepsWorking: install, /zcrm answers, stop, start again on
// the same data folder: /zcrm still answers and a Share click posts the
// card, with no reinstall. The stand-in keeps Slack's side (tokens,
// channels, messages) in the data folder as the registry keeps its own.
func TestRestartKeepsWorking(t *testing.T) {
	t.Parallel()
	environ, ops := testEnviron(t)
	var out syncBuffer

	ep, stop := startRunner(t, environ, ops, &out)
	slashThroughStandin(t, ep, envValue(environ, "TEAMS_GRPC_ADDR"), &out)
	publishCRM(t, ep)
	testkit.Eventually(t, time.Minute, func() bool {
		_, ok := zcrm(t, ep, "leads watson")
		return ok
	}, "no results for /zcrm leads watson before the restart:\n%s", out.String())
	stop()

	ep, stop = startRunner(t, environ, ops, &out)
	defer stop()
	var answer zcrmAnswer
	testkit.Eventually(t, time.Minute, func() bool {
		var ok bool
		answer, ok = zcrm(t, ep, "leads watson")
		return ok
	}, "no results for /zcrm leads watson after the restart:\n%s", out.String())

	before := countPosts(t, ep)
	resp, err := http.PostForm(ep.Standin+"/_standin/click", url.Values{
		"response_url": {answer.responseURL}, "action_id": {card.ShareActionID}, "value": {answer.shareValue}, "label": {"Share this record"},
	})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("click: HTTP %d %s", resp.StatusCode, raw)
	}
	testkit.Eventually(t, 30*time.Second, func() bool { return countPosts(t, ep) > before },
		"the Share click after the restart posted nothing in #sales:\n%s", out.String())
}

// startRunner runs the stack on environ until stop, which waits for a
// clean exit. A run that ends before every service is ready fails the test
// with its error and log, at once.
func startRunner(t *testing.T, environ []string, ops map[string]string, out *syncBuffer) (endpoints, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan endpoints, 1)
	done := make(chan struct{})
	var runErr error
	go func() {
		defer close(done)
		runErr = run(ctx, environ, out, ready)
	}()
	var ep endpoints
	select {
	case ep = <-ready:
	case <-done:
		cancel()
		t.Fatalf("run returned before ready: %v\n%s", runErr, out.String())
	case <-time.After(90 * time.Second):
		cancel()
		t.Fatalf("not ready within 90 s:\n%s", out.String())
	}
	// Generous: make test starts several stacks and the cluster's processes
	// at once on two cores.
	for name, addr := range ops {
		var last string
		testkit.Eventually(t, 2*time.Minute, func() bool {
			select {
			case <-done:
				t.Fatalf("run returned while %s was not ready: %v\n%s", name, runErr, out.String())
			default:
			}
			var ok bool
			ok, last = testkit.Readiness(addr)
			return ok
		}, "%s not ready at %s/readyz, which answered %s; the run's log:\n%s", name, addr, testkit.Lazy(func() string { return last }), out)
	}
	stopped := false
	return ep, func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
			if runErr != nil {
				t.Fatalf("run: %v", runErr)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("did not stop within 30 s")
		}
	}
}

// publishCRM publishes what the CRM of org "acme" would, as its NATS user
// (which may publish only the org's events): Bob as one of its users and a
// lead.
func publishCRM(t *testing.T, ep endpoints) {
	t.Helper()
	dev, err := devpki.Open(ep.PKI)
	if err != nil {
		t.Fatal(err)
	}
	user := natsauth.CRMUser("acme")
	pw, err := dev.NATSPassword(user)
	if err != nil {
		t.Fatal(err)
	}
	withTLS, err := dev.NATSTLS(user)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(ep.NATS, nats.UserInfo(user, pw), withTLS, nats.CustomInboxPrefix(natsauth.CRMInbox("acme")))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	env := func(id string) *commonv1.Envelope {
		return &commonv1.Envelope{EventId: id, OrgId: "acme", OccurredAt: timestamppb.Now(), SchemaVersion: 1, Producer: "restart-test"}
	}
	text := func(s string) *crmv1.FieldValue { return &crmv1.FieldValue{Kind: &crmv1.FieldValue_Text{Text: s}} }
	schema := &crmv1.ModuleSchema{Module: "Leads", SingularLabel: "Lead", PluralLabel: "Leads", DisplayField: "Full_Name", HasCardView: true,
		Fields: []*crmv1.FieldMeta{
			{ApiName: "Last_Name", Label: "Last Name", Type: crmv1.FieldType_FIELD_TYPE_SINGLE_LINE},
			{ApiName: "Full_Name", Label: "Full Name", Type: crmv1.FieldType_FIELD_TYPE_SINGLE_LINE},
			{ApiName: "Company", Label: "Company", Type: crmv1.FieldType_FIELD_TYPE_SINGLE_LINE},
		}}
	for subject, ev := range map[string]proto.Message{
		topology.CrmUser("acme", "upserted"): &crmv1.CrmUserUpserted{Envelope: env("restart-user-bob"),
			User: &crmv1.CrmUser{Id: "crm-bob", Email: "bob@acme.example", FullName: "Bob", Active: true, Version: 1}},
		topology.RecordUpserted("acme", "Leads"): &crmv1.RecordUpserted{Envelope: env("restart-lead-1"), Schema: schema,
			Record: &crmv1.Record{Module: "Leads", Id: "lead-1", Version: 1, Fields: map[string]*crmv1.FieldValue{
				"Last_Name": text("Watson"), "Full_Name": text("Emma Watson"), "Company": text("Zylker"),
			}}},
	} {
		data, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		msg := nats.NewMsg(subject)
		msg.Data = data
		msg.Header.Set("Crmslack-Type", string(proto.MessageName(ev)))
		if _, err := js.PublishMsg(testkit.Context(t), msg); err != nil {
			t.Fatalf("publishing on %s: %v", subject, err)
		}
	}
}

type zcrmAnswer struct {
	responseURL, shareValue string
}

// zcrm types /zcrm as Bob in #sales and returns the answer's response_url
// and its first Share button, whether the results came in the HTTP answer
// or followed through the response_url.
func zcrm(t *testing.T, ep endpoints, text string) (zcrmAnswer, bool) {
	t.Helper()
	resp, err := http.PostForm(ep.Standin+"/_standin/slash", url.Values{"user": {"bob@acme.example"}, "channel": {"sales"}, "text": {text}})
	if err != nil {
		return zcrmAnswer{}, false
	}
	defer resp.Body.Close()
	var got struct {
		ResponseURL string          `json:"response_url"`
		Body        json.RawMessage `json:"body"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &got) != nil {
		return zcrmAnswer{}, false
	}
	if v := shareValue(got.Body); v != "" {
		return zcrmAnswer{responseURL: got.ResponseURL, shareValue: v}, true
	}
	// "Searching…": the results follow through the response_url.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		r, err := http.Get(ep.Standin + "/_standin/messages?kind=response_url&channel=C0ACMESALE")
		if err == nil {
			var page struct{ Messages []json.RawMessage }
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			_ = json.Unmarshal(b, &page)
			for i := len(page.Messages) - 1; i >= 0; i-- {
				if v := shareValue(page.Messages[i]); v != "" {
					return zcrmAnswer{responseURL: got.ResponseURL, shareValue: v}, true
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return zcrmAnswer{}, false
}

// shareValue finds the first Share button's value in a message's blocks.
func shareValue(msg []byte) string {
	var m struct {
		Blocks []struct {
			Elements []struct {
				ActionID string `json:"action_id"`
				Value    string `json:"value"`
			} `json:"elements"`
		} `json:"blocks"`
	}
	if json.Unmarshal(msg, &m) != nil {
		return ""
	}
	for _, b := range m.Blocks {
		for _, e := range b.Elements {
			if e.ActionID == card.ShareActionID {
				return e.Value
			}
		}
	}
	return ""
}

// countPosts counts the messages posted in #sales.
func countPosts(t *testing.T, ep endpoints) int {
	t.Helper()
	r, err := http.Get(ep.Standin + "/_standin/messages?kind=message&channel=C0ACMESALE")
	if err != nil {
		return 0
	}
	defer r.Body.Close()
	var page struct{ Messages []json.RawMessage }
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &page); err != nil {
		t.Fatalf("messages: %v: %s", err, strings.TrimSpace(string(b)))
	}
	return len(page.Messages)
}
