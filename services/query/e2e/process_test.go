package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/identity"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/services/query"
)

// buildBinary builds a main package of the workspace into a temporary
// directory and returns the binary's path.
func buildBinary(tb testing.TB, pkg string) string {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// freeAddr picks a free loopback port for a process of its own, which
// binds by address (a listener cannot be handed to it), and binds the
// same one again after a restart.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// queryProcess is the query service run as a process of its own, from
// its real main, so a benchmark can read its memory apart from the rest of
// the stack, and stop and start it again.
type queryProcess struct {
	tb    testing.TB
	bin   string
	env   []string
	log   string // its stderr
	addrs query.Addrs
	cmd   *exec.Cmd
	done  chan error
}

// startQueryProcess starts the service, configured from the environment
// as cmd/query is, on fixed free ports (a restart keeps them), and waits
// until it is ready; it is stopped at cleanup.
func startQueryProcess(tb testing.TB, bin, natsURL, teamsAddr string) *queryProcess {
	tb.Helper()
	p := &queryProcess{tb: tb, bin: bin, log: filepath.Join(tb.TempDir(), "query.log"),
		addrs: query.Addrs{GRPC: freeAddr(tb), Ops: freeAddr(tb)}}
	p.env = append(append(os.Environ(), testkit.TrustFiles(tb, testkit.PKI(tb), identity.Query).Environ()...),
		"NATS_URL="+natsURL, "NATS_REPLICAS=1", "QUERY_GRPC_ADDR="+p.addrs.GRPC, "QUERY_OPS_ADDR="+p.addrs.Ops,
		"TEAMS_ADDR="+teamsAddr, "CRM_BASE_URL="+crmBaseURL, "QUERY_SLASH_COMMANDS=/zcrm", "QUERY_SLACK_USER_TTL=10m",
		"SHARE_BUTTON_KEY="+shareButtonKey)
	p.start()
	tb.Cleanup(p.stop)
	return p
}

// start starts the process and returns how long it took to be ready.
func (p *queryProcess) start() time.Duration {
	p.tb.Helper()
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.tb.Fatal(err)
	}
	defer logf.Close()
	p.cmd = exec.Command(p.bin)
	p.cmd.Env, p.cmd.Stderr, p.cmd.Stdout = p.env, logf, logf
	// It dies with this process, should that be killed before cleanup.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	t0 := time.Now()
	if err := p.cmd.Start(); err != nil {
		p.tb.Fatalf("starting %s: %v", p.bin, err)
	}
	p.done = make(chan error, 1)
	go func() { p.done <- p.cmd.Wait() }()
	for {
		select {
		case err := <-p.done:
			p.tb.Fatalf("query process exited before it was ready: %v\n%s", err, p.tail())
		case <-time.After(10 * time.Millisecond):
		}
		if resp, err := http.Get("http://" + p.addrs.Ops + "/readyz"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(t0)
			}
		}
		if time.Since(t0) > 5*time.Minute {
			p.tb.Fatalf("query process not ready after %s\n%s", time.Since(t0), p.tail())
		}
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *queryProcess) stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			p.tb.Errorf("query process stopped with %v\n%s", err, p.tail())
		}
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		p.tb.Errorf("query process did not stop within 30 s")
	}
	p.cmd = nil
}

// restart stops the process and starts it again; it returns how long the
// new one took to be ready.
func (p *queryProcess) restart() time.Duration {
	p.tb.Helper()
	p.stop()
	return p.start()
}

// memory is the process's resident set now and at its peak, from
// /proc/<pid>/status, in bytes.
func (p *queryProcess) memory() (rss, peak int64) {
	p.tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		p.tb.Fatalf("reading the query process's memory: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			peak = kb << 10
		}
	}
	return rss, peak
}

// cpu is the CPU time (user and system) the running process has used.
func (p *queryProcess) cpu() time.Duration {
	p.tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		p.tb.Fatalf("reading the query process's CPU time: %v", err)
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is the first; utime and stime the 12th and 13th.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// clockTicks is the kernel's USER_HZ, which /proc counts CPU time in: 100
// on every Linux architecture Go supports.
const clockTicks = 100

// selfCPU is the CPU time this process (the rest of the stack: NATS,
// FerretDB, the gateway) has used.
func selfCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// metric reads one unlabelled metric of the process's /metrics.
func (p *queryProcess) metric(name string) float64 {
	p.tb.Helper()
	resp, err := http.Get("http://" + p.addrs.Ops + "/metrics")
	if err != nil {
		p.tb.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				p.tb.Fatalf("%s: %v", name, err)
			}
			return f
		}
	}
	p.tb.Fatalf("no metric %s", name)
	return 0
}

// tail is the end of the process's log, for a failure's message.
func (p *queryProcess) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
