package testkit

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/crmslack/crmslack/libs/rpc"
)

// StartTimeout bounds a service's start and its stop in [Start]: generous,
// since every service of a stack starts at once on a shared machine.
const StartTimeout = 60 * time.Second

// Services runs services in-process for one test (the end-to-end harness of
// every service) and stops them, the last started first, at cleanup.
type Services struct {
	t      testing.TB
	mu     sync.Mutex
	stops  []func()
	byName map[string]func()
}

// NewServices returns an empty set whose services stop at cleanup.
func NewServices(t testing.TB) *Services {
	s := &Services{t: t}
	t.Cleanup(s.stopAll)
	return s
}

// Start runs a service until cleanup and waits for it to be ready: run
// gets the callback to pass as the service's Config.Ready, and Start
// returns what the service handed it (its bound addresses). A service that
// stops before it is ready, or is not ready within StartTimeout, fails
// the test; so does one that stops with an error or does not stop in time.
func Start[A any](s *Services, name string, run func(ctx context.Context, ready func(A)) error) A {
	s.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	up := make(chan A, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(a A) { up <- a }) }()
	var a A
	select {
	case a = <-up:
	case err := <-done:
		cancel()
		s.t.Fatalf("%s stopped before it was ready: %v", name, err)
	case <-time.After(StartTimeout):
		cancel()
		s.t.Fatalf("%s not ready in %s", name, StartTimeout)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					s.t.Errorf("%s stopped with %v", name, err)
				}
			case <-time.After(StartTimeout):
				s.t.Errorf("%s did not stop within %s", name, StartTimeout)
			}
		})
	}
	s.mu.Lock()
	s.stops = append(s.stops, stop)
	if s.byName == nil {
		s.byName = map[string]func(){}
	}
	s.byName[name] = stop
	s.mu.Unlock()
	return a
}

// Stop stops the service started under name now, as an outage would
// (fault-injection tests); cleanup then leaves it be.
func (s *Services) Stop(name string) {
	s.t.Helper()
	s.mu.Lock()
	stop := s.byName[name]
	s.mu.Unlock()
	if stop == nil {
		s.t.Fatalf("no service %q was started", name)
	}
	stop()
}

func (s *Services) stopAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.stops) - 1; i >= 0; i-- {
		s.stops[i]()
	}
	s.stops = nil
}

// Listener binds a loopback port chosen by the kernel, for a service's
// Config.Listeners: the test knows the address (a public URL, say) before
// the service starts, with no pick-then-bind race. The service serves and
// closes it (closing it at cleanup would stop the server under the test).
func Listener(t testing.TB) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testkit: listening: %v", err)
	}
	return l
}

// RandomKey returns 32 random bytes in base64, the form of every key
// variable (INSTALL_TICKET_KEY, GATEWAY_STATE_KEY, TEAMS_TOKEN_KEYS entries).
func RandomKey(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// WaitReady polls http://opsAddr/readyz until it answers 200, failing the
// test after timeout.
func WaitReady(t testing.TB, opsAddr string, timeout time.Duration) {
	t.Helper()
	var last string
	Eventually(t, timeout, func() bool {
		var ok bool
		ok, last = Readiness(opsAddr)
		return ok
	}, "%s/readyz answers 200; its last answer: %s", opsAddr, Lazy(func() string { return last }))
}

// Ready reports whether http://opsAddr/readyz answers 200 now.
func Ready(opsAddr string) bool {
	ok, _ := Readiness(opsAddr)
	return ok
}

// Readiness asks http://opsAddr/readyz and says whether it is ready and
// what it answered.
func Readiness(opsAddr string) (bool, string) {
	resp, err := http.Get("http://" + opsAddr + "/readyz")
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return resp.StatusCode == http.StatusOK, fmt.Sprintf("HTTP %d %s", resp.StatusCode, strings.TrimSpace(string(body)))
}

// GRPCServer serves a test's fake of another service's gRPC API the way
// services serve theirs (libs/rpc: mutual TLS with the test's PKI, the
// authorization table, CRM credentials), on a kernel-chosen loopback port,
// stopped at cleanup; it returns the address. It proves identity name (the
// service it fakes: its clients accept no other). register adds the fakes.
// Clients reach it with AllowedConn, DialAs or CRMConn on PKI(t).
func GRPCServer(t testing.TB, name string, register func(*grpc.Server)) string {
	t.Helper()
	lis := Listener(t)
	files := TrustFiles(t, PKI(t), name)
	id, err := files.Identity()
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	keys, err := files.CRMKeys()
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	s, err := rpc.NewServer(Logger(t), rpc.Security{Identity: id, CRMKeys: keys})
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	register(s.Server)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}
