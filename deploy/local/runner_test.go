package main

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/crmslack/crmslack/libs/testkit"
)

// testEnviron runs every part on a free port in a temporary folder. The
// names of the ops addresses are returned so tests can poll readiness.
func testEnviron(t *testing.T) (env []string, ops map[string]string) {
	t.Helper()
	teams, gw := freeAddr(t), freeAddr(t)
	query := freeAddr(t)
	ops = map[string]string{"teams": freeAddr(t), "gateway": freeAddr(t), "delivery": freeAddr(t), "query": freeAddr(t), "sharing": freeAddr(t)}
	return []string{
		"LOCAL_DATA_DIR=" + t.TempDir(),
		"LOCAL_NATS_PORT=0",
		"LOCAL_MONGO_ADDR=127.0.0.1:0",
		"SLACK_STANDIN_ADDR=127.0.0.1:0",
		"LOG_LEVEL=warn",
		"TEAMS_GRPC_ADDR=" + teams,
		"TEAMS_ADDR=" + teams,
		"TEAMS_OPS_ADDR=" + ops["teams"],
		"GATEWAY_ADDR=" + gw,
		"GATEWAY_PUBLIC_URL=http://" + gw,
		"GATEWAY_OPS_ADDR=" + ops["gateway"],
		"DELIVERY_GRPC_ADDR=" + freeAddr(t),
		"DELIVERY_OPS_ADDR=" + ops["delivery"],
		"QUERY_GRPC_ADDR=" + query,
		"QUERY_ADDR=" + query,
		"QUERY_OPS_ADDR=" + ops["query"],
		"SHARING_GRPC_ADDR=" + freeAddr(t),
		"SHARING_OPS_ADDR=" + ops["sharing"],
	}, ops
}

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
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

	nc, err := nats.Connect(ep.NATS)
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

// TestInterruptExitsZero builds the real binary, waits for it to come up and
// sends it SIGINT, as Ctrl-C does.
func TestInterruptExitsZero(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "local")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	environ, _ := testEnviron(t)
	cmd.Env = append(os.Environ(), environ...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	up := make(chan struct{})
	var lines syncBuffer
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines.Write([]byte(sc.Text() + "\n"))
			if strings.Contains(sc.Text(), "Ctrl-C stops everything") {
				close(up)
			}
		}
	}()
	select {
	case <-up:
	case <-time.After(90 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("not up within 90 s:\n%s\n%s", lines.String(), stderr.String())
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("exit: %v\n%s\n%s", err, lines.String(), stderr.String())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("did not exit within 30 s of SIGINT")
	}
}
