package sandbox

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/slackstandin"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/topology"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const (
	acme  = "T0ACME0001"
	sales = "C0ACMESALE"
	bob   = "U0ACME0BOB"
)

// answerBlocks is the app's answer to every slash command in these tests:
// one of each block the pane renders.
const answerBlocks = `{"response_type":"ephemeral","text":"1 lead","blocks":[
 {"type":"header","text":{"type":"plain_text","text":"Leads matching watson"}},
 {"type":"section","text":{"type":"mrkdwn","text":"*Emma Watson* at <https://crm.example/Leads/1|Zylker> <@U0ACME0BOB>"},
  "fields":[{"type":"mrkdwn","text":"*Email*\nemma@zylker.example"},{"type":"plain_text","text":"Phone\n+33 1"}]},
 {"type":"context","elements":[{"type":"mrkdwn","text":"Lead · owner <@U0ACME0BOB>"},{"type":"image","image_url":"https://crm.example/i.png","alt_text":"icon"}]},
 {"type":"image","slack_file":{"id":"F0CHART001"},"alt_text":"Pipeline chart","title":{"type":"plain_text","text":"Pipeline"}},
 {"type":"divider"},
 {"type":"actions","block_id":"b1","elements":[
  {"type":"button","action_id":"card_share","value":"o1/Leads/1","text":{"type":"plain_text","text":"Share this record"},"style":"primary"},
  {"type":"button","action_id":"open","url":"https://crm.example/Leads/1","text":{"type":"plain_text","text":"Open in CRM"}},
  {"type":"static_select","action_id":"pick","placeholder":{"type":"plain_text","text":"Pick one"}}]},
 {"type":"video"}]}`

// app is the Slack app the pane talks to: it checks Slack's signature as
// the gateway does and keeps what it got.
type app struct {
	secret string
	mu     sync.Mutex
	got    []url.Values
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	ts := r.Header.Get("X-Slack-Request-Timestamp")
	if r.Header.Get("X-Slack-Signature") != slackstandin.Signature(a.secret, ts, body) {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	form, _ := url.ParseQuery(string(body))
	a.mu.Lock()
	a.got = append(a.got, form)
	a.mu.Unlock()
	if r.URL.Path == slackstandin.AppPathCommands {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, answerBlocks)
	}
}

func (a *app) received() []url.Values {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]url.Values(nil), a.got...)
}

type fixture struct {
	pane  *httptest.Server
	sa    *slackstandin.Server
	app   *app
	js    jetstream.JetStream
	clock time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	const secret = "test-signing-secret"
	sa, err := slackstandin.New(slackstandin.Config{App: slackstandin.AppConfig{SigningSecret: secret}, RateLimits: slackstandin.RateLimits{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sa.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sa.Close)
	a := &app{secret: secret}
	appSrv := httptest.NewServer(a)
	t.Cleanup(appSrv.Close)

	ns := testkit.NATS(t)
	nc := testkit.NATSConn(t, ns)
	js := testkit.JetStream(t, nc)
	pubBus, err := bus.Connect(testkit.Context(t), bus.Config{URL: ns.ClientURL(), Name: t.Name(), Logger: testkit.Logger(t), NATSOptions: []nats.Option{testkit.NATSLogin(t)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pubBus.Close() })
	if err := pubBus.EnsureStreams(testkit.Context(t), topology.Select(topology.StreamOptions{}, topology.StreamCRM)...); err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	srv, err := New(Config{Standin: sa, AppURL: appSrv.URL, Org: "o1", CRM: busPublisher{pubBus}, Logger: testkit.Logger(t),
		Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	pane := httptest.NewServer(srv.Handler())
	t.Cleanup(pane.Close)
	return &fixture{pane: pane, sa: sa, app: a, js: js, clock: clock}
}

type busPublisher struct{ b *bus.Bus }

func (p busPublisher) Publish(ctx context.Context, subject string, ev bus.Event) error {
	_, err := p.b.Publish(ctx, subject, ev)
	return err
}

func (f *fixture) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(f.pane.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (f *fixture) post(t *testing.T, path string, form url.Values) (bool, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.pane.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Sandbox", "fetch")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a struct {
		OK      bool   `json:"ok"`
		Message string `json:"message"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	return a.OK, a.Message
}

func TestPaneSlashCommandAndClick(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	status, page := f.get(t, "/w/"+acme+"?as="+bob+"&c="+sales)
	if status != http.StatusOK || !strings.Contains(page, "Anyone seen the Q3 forecast?") || !strings.Contains(page, `data-testid="conv-sales"`) {
		t.Fatalf("page: HTTP %d\n%s", status, page)
	}
	if ok, msg := f.post(t, "/w/"+acme+"/c/"+sales+"/slash", url.Values{"as": {bob}, "text": {"/zcrm leads watson"}}); !ok {
		t.Fatalf("slash: %s", msg)
	}
	got := f.app.received()
	if len(got) != 1 || got[0].Get("command") != "/zcrm" || got[0].Get("text") != "leads watson" || got[0].Get("user_id") != bob {
		t.Fatalf("the app got %v", got)
	}
	_, feed := f.get(t, "/w/"+acme+"/c/"+sales+"/feed?as="+bob)
	testkit.Golden(t, "testdata/feed.golden.html", []byte(feed), *update)

	// Another person does not see Bob's ephemeral answer.
	_, other := f.get(t, "/w/"+acme+"/c/"+sales+"/feed?as=U0ACME0ALC")
	if strings.Contains(other, "Only visible to you") {
		t.Error("alice sees bob's ephemeral answer")
	}

	if ok, msg := f.post(t, "/w/"+acme+"/c/"+sales+"/click", url.Values{"as": {bob}, "action_id": {"card_share"}, "value": {"o1/Leads/1"}, "block_id": {"b1"}, "label": {"Share this record"}}); !ok {
		t.Fatalf("click: %s", msg)
	}
	got = f.app.received()
	var payload struct {
		Type    string `json:"type"`
		Actions []struct {
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
		} `json:"actions"`
	}
	if len(got) != 2 || json.Unmarshal([]byte(got[1].Get("payload")), &payload) != nil || payload.Type != "block_actions" || len(payload.Actions) != 1 || payload.Actions[0].ActionID != "card_share" {
		t.Fatalf("the app got %v", got)
	}

	if ok, msg := f.post(t, "/w/"+acme+"/c/"+sales+"/slash", url.Values{"as": {bob}, "text": {"  "}}); ok || !strings.Contains(msg, "Type a command") {
		t.Errorf("an empty command: ok=%v %q", ok, msg)
	}
	// "Show" with another workspace: its first person and conversation.
	resp0, err := http.Get(f.pane.URL + "/?team=T0GLBX0001&as=" + bob + "&c=" + sales)
	if err != nil {
		t.Fatal(err)
	}
	body0, _ := io.ReadAll(resp0.Body)
	resp0.Body.Close()
	if resp0.StatusCode != http.StatusOK || !strings.Contains(string(body0), "in Globex") {
		t.Errorf("switching to Globex: HTTP %d\n%s", resp0.StatusCode, body0)
	}

	// Another site's page in the same browser cannot type for Bob.
	req, _ := http.NewRequest(http.MethodPost, f.pane.URL+"/w/"+acme+"/c/"+sales+"/slash", strings.NewReader("as="+bob+"&text=help"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a cross-site POST: HTTP %d, want 403", resp.StatusCode)
	}
	if n := len(f.app.received()); n != 2 {
		t.Errorf("the app got %d requests, want still 2", n)
	}
	if status, body := f.get(t, "/w/T0NOTHERE1"); status != http.StatusNotFound || !strings.Contains(body, "no workspace") {
		t.Errorf("unknown workspace: HTTP %d %s", status, body)
	}
}

func TestCRMPanelPublishesAsTheCRM(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := testkit.Context(t)
	cons, err := f.js.OrderedConsumer(ctx, topology.StreamCRM, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"crm.v1.o1.>"}})
	if err != nil {
		t.Fatal(err)
	}
	next := func() (string, []byte) {
		t.Helper()
		m, err := cons.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			t.Fatalf("no event: %v", err)
		}
		return m.Subject(), m.Data()
	}
	for _, tt := range []struct {
		event    string
		form     url.Values
		subjects []string
	}{
		{"deal-won", url.Values{"deal": {"deal-003"}}, []string{"crm.v1.o1.record.upserted.Deals", "crm.v1.o1.workflow.triggered"}},
		{"missed-call", url.Values{"contact": {"cont-000"}}, []string{"crm.v1.o1.signal.call"}},
		{"activity", url.Values{"subject": {"Call Emma"}}, []string{"crm.v1.o1.activity.scheduled"}},
		{"rule", url.Values{"rule": {"big-lead"}, "record": {"Leads/lead-000"}}, []string{"crm.v1.o1.workflow.triggered"}},
		{"chart", url.Values{"c": {sales}}, []string{"crm.v1.o1.share.chart"}},
	} {
		tt.form.Set("team", acme)
		tt.form.Set("as", bob)
		if ok, msg := f.post(t, "/crm/"+tt.event, tt.form); !ok {
			t.Fatalf("%s: %s", tt.event, msg)
		}
		for _, want := range tt.subjects {
			subject, data := next()
			if subject != want {
				t.Fatalf("%s: published on %s, want %s", tt.event, subject, want)
			}
			switch tt.event {
			case "missed-call":
				var ev crmv1.SalesSignal
				if err := proto.Unmarshal(data, &ev); err != nil || ev.GetKind() != "missed" || ev.GetRecordOwner().GetEmail() != "bob@acme.example" {
					t.Errorf("missed call: %v %v", &ev, err)
				}
			case "activity":
				var ev crmv1.ActivityScheduled
				if err := proto.Unmarshal(data, &ev); err != nil {
					t.Fatal(err)
				}
				a := ev.GetActivity()
				due := a.GetStartAt().AsTime().Add(-time.Duration(a.GetReminderMinutesBefore()[0]) * time.Minute)
				if a.GetOwner().GetEmail() != "bob@acme.example" || due.Sub(f.clock) < 59*time.Second || due.Sub(f.clock) > time.Minute {
					t.Errorf("activity %v: reminder due %s after now, want a minute", a, due.Sub(f.clock))
				}
			}
		}
	}
	for _, bad := range []struct {
		event string
		form  url.Values
		want  string
	}{
		{"deal-won", url.Values{"deal": {"deal-999"}}, "no demo record"},
		{"rule", url.Values{"rule": {"a b"}, "record": {"Leads/lead-000"}}, "rule id"},
		{"fireworks", url.Values{}, "no CRM event"},
	} {
		if ok, msg := f.post(t, "/crm/"+bad.event, bad.form); ok || !strings.Contains(msg, bad.want) {
			t.Errorf("%s %v: ok=%v %q, want an error with %q", bad.event, bad.form, ok, msg, bad.want)
		}
	}
}

func TestEventsStreamChanges(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(testkit.Context(t), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.pane.URL+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	readEvent := func() string {
		for sc.Scan() {
			if name, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
				return name
			}
		}
		t.Fatalf("stream ended: %v", sc.Err())
		return ""
	}
	if ev := readEvent(); ev != "hello" {
		t.Fatalf("first event %q", ev)
	}
	tok := f.sa.IssueBotToken(acme)
	form := url.Values{"token": {tok}, "channel": {sales}, "text": {"posted by the app"}}
	if _, err := http.PostForm(f.sa.URL()+"/api/chat.postMessage", form); err != nil {
		t.Fatal(err)
	}
	if ev := readEvent(); ev != "change" {
		t.Fatalf("after a post, event %q", ev)
	}
}

func TestConfigSaysWhatIsMissing(t *testing.T) {
	t.Parallel()
	sa, err := slackstandin.New(slackstandin.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ok := Config{Standin: sa, AppURL: "http://127.0.0.1:1", Org: "o1", CRM: busPublisher{}}
	for _, tt := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"stand-in", func(c *Config) { c.Standin = nil }, "Standin"},
		{"app", func(c *Config) { c.AppURL = "" }, "AppURL"},
		{"org", func(c *Config) { c.Org = "" }, "Org"},
		{"crm", func(c *Config) { c.CRM = nil }, "CRM"},
		{"lead", func(c *Config) { c.ReminderLead = -time.Second }, "ReminderLead"},
	} {
		c := ok
		tt.edit(&c)
		if _, err := New(c); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error naming %s", tt.name, err, tt.want)
		}
	}
	if _, err := New(ok); err != nil {
		t.Errorf("a good config: %v", err)
	}
}
