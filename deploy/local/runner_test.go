package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/crmslack/crmslack/libs/devpki"
	"github.com/crmslack/crmslack/libs/identity"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/testkit/harness"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"
)

// testEnviron runs every part on a free port in a temporary folder. The
// names of the ops addresses are returned so tests can poll readiness.
// Every port is picked here, none left to the parts (port 0): a port the
// kernel hands a part could be one picked here and already released.
func testEnviron(t *testing.T) (env []string, ops map[string]string) {
	t.Helper()
	var ls []net.Listener
	free := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l) // held until all are picked, so all differ
		return l.Addr().String()
	}
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	teams, gw := free(), free()
	query := free()
	_, natsPort, _ := net.SplitHostPort(free())
	ops = map[string]string{"teams": free(), "gateway": free(), "delivery": free(), "query": free(), "sharing": free(), "workflows": free(), "signals": free(), "reminders": free(), "console": free()}
	workflows, signals, reminders, delivery, sharing := free(), free(), free(), free(), free()
	return []string{
		"LOCAL_DATA_DIR=" + t.TempDir(),
		"LOCAL_CRM_ORGS=acme",
		"LOCAL_NATS_PORT=" + natsPort,
		"LOCAL_MONGO_ADDR=" + free(),
		"SLACK_STANDIN_ADDR=" + free(),
		"LOG_LEVEL=warn",
		"TEAMS_GRPC_ADDR=" + teams,
		"TEAMS_ADDR=" + teams,
		"TEAMS_OPS_ADDR=" + ops["teams"],
		"GATEWAY_ADDR=" + gw,
		"GATEWAY_PUBLIC_URL=http://" + gw,
		"GATEWAY_OPS_ADDR=" + ops["gateway"],
		"DELIVERY_GRPC_ADDR=" + delivery,
		"DELIVERY_ADDR=" + delivery,
		"DELIVERY_OPS_ADDR=" + ops["delivery"],
		"QUERY_GRPC_ADDR=" + query,
		"QUERY_ADDR=" + query,
		"QUERY_OPS_ADDR=" + ops["query"],
		"SHARING_GRPC_ADDR=" + sharing,
		"SHARING_ADDR=" + sharing,
		"SHARING_OPS_ADDR=" + ops["sharing"],
		"WORKFLOWS_GRPC_ADDR=" + workflows,
		"WORKFLOWS_ADDR=" + workflows,
		"WORKFLOWS_OPS_ADDR=" + ops["workflows"],
		"SIGNALS_GRPC_ADDR=" + signals,
		"SIGNALS_ADDR=" + signals,
		"SIGNALS_OPS_ADDR=" + ops["signals"],
		"REMINDERS_GRPC_ADDR=" + reminders,
		"REMINDERS_ADDR=" + reminders,
		"REMINDERS_OPS_ADDR=" + ops["reminders"],
		"SANDBOX_ADDR=" + free(),
		"CONSOLE_ADDR=" + free(),
		"CONSOLE_OPS_ADDR=" + ops["console"],
	}, ops
}

// syncBuffer is a bytes.Buffer safe to read while the runner writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRunBringsEverythingUpAndStopsCleanly(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	ready := make(chan endpoints, 1)
	done := make(chan error, 1)
	environ, ops := testEnviron(t)
	go func() { done <- run(ctx, environ, &out, ready) }()

	var ep endpoints
	select {
	case ep = <-ready:
	case err := <-done:
		t.Fatalf("run returned before ready: %v\n%s", err, out.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("not ready within a minute:\n%s", out.String())
	}

	// The toolbox user of the development PKI, over TLS; anonymous clients,
	// and the right password in the clear, are refused.
	if nc, err := nats.Connect(ep.NATS); err == nil {
		nc.Close()
		t.Fatal("the embedded NATS let an anonymous client in")
	}
	dev, err := devpki.Open(ep.PKI)
	if err != nil {
		t.Fatal(err)
	}
	toolboxPW, err := dev.NATSPassword(devpki.Toolbox)
	if err != nil {
		t.Fatal(err)
	}
	if nc, err := nats.Connect(ep.NATS, nats.UserInfo(devpki.Toolbox, toolboxPW)); err == nil {
		nc.Close()
		t.Fatal("the embedded NATS took a password in the clear")
	}
	toolboxTLS, err := dev.NATSTLS(devpki.Toolbox)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(ep.NATS, nats.UserInfo(devpki.Toolbox, toolboxPW), toolboxTLS)
	if err != nil {
		t.Fatalf("NATS at %s: %v", ep.NATS, err)
	}
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AccountInfo(); err != nil {
		t.Fatalf("JetStream not enabled: %v", err)
	}
	nc.Close()

	mc, err := mongo.Connect(options.Client().ApplyURI(ep.Mongo))
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
	defer pcancel()
	if err := mc.Ping(pctx, nil); err != nil {
		t.Fatalf("MongoDB at %s: %v\n%s", ep.Mongo, err, out.String())
	}
	_ = mc.Disconnect(pctx)

	resp, err := http.Post(ep.SlackAPI+"auth.test", "application/x-www-form-urlencoded", strings.NewReader("token=xoxb-nope"))
	if err != nil {
		t.Fatalf("Slack stand-in: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("auth.test status %d", resp.StatusCode)
	}
	for name, addr := range ops {
		testkit.Eventually(t, 30*time.Second, func() bool {
			resp, err := http.Get("http://" + addr + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}, "%s never became ready:\n%s", name, out.String())
	}
	if !strings.Contains(out.String(), "crmslack is up") {
		t.Errorf("no start-up report in:\n%s", out.String())
	}
	slashThroughStandin(t, ep, envValue(environ, "TEAMS_GRPC_ADDR"), &out)
	scrapeEveryService(t, ops)

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("did not stop within 30 s of cancellation")
	}
	if !strings.Contains(out.String(), "stopped") {
		t.Errorf("no stop report in:\n%s", out.String())
	}
}

func TestConfigurationErrorsAreReported(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), []string{"LOCAL_NATS_PORT=http", "LOG_FORMAT=xml"}, &syncBuffer{}, nil)
	if err == nil || !strings.Contains(err.Error(), "LOCAL_NATS_PORT") || !strings.Contains(err.Error(), "LOG_FORMAT") {
		t.Fatalf("err = %v", err)
	}
}

func envValue(environ []string, key string) string {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// slashThroughStandin connects the stand-in's Acme workspace to org "acme"
// the way an admin does (BeginInstall, then the browser through the
// gateway, the stand-in's consent page and back), then types /zcrm help as
// Bob through POST /_standin/slash and expects the gateway's usage card
// back through the stand-in.
func slashThroughStandin(t *testing.T, ep endpoints, teamsAddr string, out *syncBuffer) {
	t.Helper()
	// As the CRM, with the runner's development CA and CRM keys.
	pki, err := devpki.Open(ep.PKI)
	if err != nil {
		t.Fatal(err)
	}
	harness.InstallThroughGateway(t, testkit.CRMConn(t, pki, identity.Teams, teamsAddr), "acme", "T0ACME0001",
		&teamsv1.Caller{User: &commonv1.CrmUserRef{Id: "u1", Name: "Ada"}, IsAdmin: true})

	type answer struct {
		Status      int    `json:"status"`
		ResponseURL string `json:"response_url"`
		Body        struct {
			ResponseType string          `json:"response_type"`
			Text         string          `json:"text"`
			Blocks       json.RawMessage `json:"blocks"`
		} `json:"body"`
	}
	const usage = "/zcrm searches your CRM"
	var got answer
	// The gateway learns of the new team from a watch: until then it
	// answers that the workspace is not connected.
	testkit.Eventually(t, 30*time.Second, func() bool {
		resp, err := http.PostForm(ep.Standin+"/_standin/slash", url.Values{"user": {"bob@acme.example"}, "channel": {"sales"}, "text": {"help"}})
		if err != nil {
			t.Logf("slash: %v", err)
			return false
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		got = answer{}
		if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &got) != nil {
			t.Logf("slash: HTTP %d %s", resp.StatusCode, raw)
			return false
		}
		return got.Status == http.StatusOK && !strings.Contains(got.Body.Text, "not connected")
	}, "the gateway never answered /zcrm help through the stand-in:\n%s", out.String())
	if got.Body.ResponseType != "ephemeral" {
		t.Fatalf("answer %+v, want ephemeral", got)
	}
	if strings.Contains(got.Body.Text, usage) {
		return
	}
	// On a slow machine the gateway says "Searching…" and the card
	// follows through the response_url, which the stand-in records.
	testkit.Eventually(t, 30*time.Second, func() bool {
		resp, err := http.Get(ep.Standin + "/_standin/messages?kind=response_url&channel=C0ACMESALE")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(raw), usage)
	}, "no usage card: the immediate answer was %q and none came through the response_url", got.Body.Text)
}

// scrapeEveryService reads each service's /metrics as Prometheus would and
// expects its own series there, not an empty page: the process's, and one
// the service itself registers.
func scrapeEveryService(t *testing.T, ops map[string]string) {
	t.Helper()
	own := map[string]string{
		"teams":     `crmslack_bus_handled_total{consumer="teams-slack-events"`,
		"gateway":   "crmslack_gateway_slack_requests_total",
		"delivery":  `crmslack_delivery_held_messages{consumer="delivery-p`,
		"query":     `crmslack_bus_handled_total{consumer="query-commands"`,
		"sharing":   `crmslack_bus_handled_total{consumer="sharing-interactions"`,
		"workflows": `crmslack_bus_handled_total{consumer="workflows-triggers"`,
		"signals":   `crmslack_bus_handled_total{consumer="signals-delivery-succeeded"`,
		"reminders": `crmslack_bus_handled_total{consumer="reminders-interactions"`,
		"console":   `crmslack_console_sign_ins_total{kind="dev",outcome="ok"}`,
	}
	if len(own) != len(ops) {
		t.Fatalf("scraping %d services, the runner starts %d", len(own), len(ops))
	}
	for name, addr := range ops {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatalf("%s /metrics: %v", name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{"go_goroutines ", own[name]} {
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
				t.Errorf("%s /metrics: status %d, no %s in %d bytes", name, resp.StatusCode, want, len(body))
			}
		}
	}
}
