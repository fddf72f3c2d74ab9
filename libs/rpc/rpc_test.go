package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/crmslack/crmslack/libs/devpki"
	"github.com/crmslack/crmslack/libs/fault"
	"github.com/crmslack/crmslack/libs/mtls"
	"github.com/crmslack/crmslack/libs/tracectx"
)

// testIdentity is a gateway identity from a fresh development CA.
func testIdentity(t *testing.T) *mtls.Identity {
	t.Helper()
	d, err := devpki.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return identityOf(t, d, "gateway")
}

// identityOf is name's identity from d.
func identityOf(t *testing.T, d *devpki.Dir, name string) *mtls.Identity {
	t.Helper()
	f, err := d.Trust(name)
	if err != nil {
		t.Fatal(err)
	}
	id, err := f.Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestToStatus(t *testing.T) {
	t.Parallel()
	notFound := &Error{Code: codes.NotFound, Msg: "team T1 is not registered for org o1"}
	cases := []struct {
		name string
		err  error
		code codes.Code
		msg  string
	}{
		{"nil", nil, codes.OK, ""},
		{"coded", notFound, codes.NotFound, "team T1 is not registered for org o1"},
		{"wrapped coded", fmt.Errorf("removing: %w", notFound), codes.NotFound, "removing: team T1 is not registered for org o1"},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), codes.DeadlineExceeded, "x: context deadline exceeded"},
		{"status passes", status.Error(codes.Unavailable, "down"), codes.Unavailable, "down"},
		{"plain error hides internals", errors.New("mongo: secret host 10.0.0.3"), codes.Internal, "internal error"},
		{"fault invalid", fault.Errorf(fault.Invalid, "team_id is required"), codes.InvalidArgument, "team_id is required"},
		{"wrapped fault keeps its own message", fmt.Errorf("db x: %w", fault.Errorf(fault.NotFound, "no team T1")), codes.NotFound, "no team T1"},
		{"fault denied", fault.Errorf(fault.Denied, "admins only"), codes.PermissionDenied, "admins only"},
		{"fault precondition", fault.Errorf(fault.Precondition, "integration off"), codes.FailedPrecondition, "integration off"},
		{"fault conflict", fault.Errorf(fault.Conflict, "changed meanwhile"), codes.Aborted, "changed meanwhile"},
		{"fault exists", fault.Errorf(fault.Exists, "request id used"), codes.AlreadyExists, "request id used"},
		{"fault unavailable", fault.Errorf(fault.Unavailable, "Slack down"), codes.Unavailable, "Slack down"},
		{"a domain's own sentinel of a kind", fault.Errorf(fmt.Errorf("%w: broken token", fault.Precondition), "re-authorise"), codes.FailedPrecondition, "re-authorise"},
		{"fault of no known kind hides", fault.Errorf(errors.New("odd"), "odd"), codes.Internal, "internal error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := status.Convert(ToStatus(c.err))
			if got.Code() != c.code || got.Message() != c.msg {
				t.Fatalf("got %s %q, want %s %q", got.Code(), got.Message(), c.code, c.msg)
			}
		})
	}
}

// echoHealth is a health server that also reports what the call carried, so
// the test can see the trace id and panics handled by the interceptor.
type probe struct {
	healthpb.UnimplementedHealthServer
	traceID chan string
	panic   bool
}

func (p *probe) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	if p.panic {
		panic("boom")
	}
	p.traceID <- tracectx.TraceID(ctx)
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func serve(t *testing.T, p *probe) healthpb.HealthClient {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	id := testIdentity(t)
	s := grpc.NewServer(grpc.Creds(credentials.NewTLS(id.ServerConfig())), grpc.ChainUnaryInterceptor(serverInterceptor(log)))
	healthpb.RegisterHealthServer(s, p)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	cc, err := Dial(lis.Addr().String(), "gateway", id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return healthpb.NewHealthClient(cc)
}

func TestTraceTravelsToTheServer(t *testing.T) {
	t.Parallel()
	p := &probe{traceID: make(chan string, 1)}
	client := serve(t, p)
	tc := tracectx.New()
	ctx := tracectx.WithTrace(context.Background(), tc)
	if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if got := <-p.traceID; got != tc.TraceIDString() {
		t.Fatalf("server saw trace %q, want %q", got, tc.TraceIDString())
	}
	// A call without a trace gets a fresh one on the server.
	if _, err := client.Check(metadata.NewOutgoingContext(context.Background(), nil), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	if got := <-p.traceID; len(got) != 32 {
		t.Fatalf("server trace id %q, want a new one", got)
	}
}

func TestPanicBecomesInternal(t *testing.T) {
	t.Parallel()
	client := serve(t, &probe{panic: true})
	_, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{})
	if status.Code(err) != codes.Internal {
		t.Fatalf("err = %v, want Internal", err)
	}
	// The server survives to answer again.
	_, err = client.Check(context.Background(), &healthpb.HealthCheckRequest{})
	if status.Code(err) != codes.Internal {
		t.Fatalf("second call err = %v", err)
	}
}

func TestServerPartStopsGracefully(t *testing.T) {
	t.Parallel()
	id := testIdentity(t)
	s, err := NewServer(slog.New(slog.NewTextHandler(io.Discard, nil)), Security{Identity: id})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Part("grpc", lis).Run(ctx) }()
	cc, err := Dial(lis.Addr().String(), "gateway", id)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	resp, err := healthpb.NewHealthClient(cc).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v", resp, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestDialPinsTheServer: a client dialing one service refuses a server that
// proves another identity of the same CA (a stolen service key cannot stand
// in for the team registry), accepts the one it named, and will not dial
// without naming one.
func TestDialPinsTheServer(t *testing.T) {
	t.Parallel()
	d, err := devpki.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	server := identityOf(t, d, "query") // not the team registry
	s := grpc.NewServer(grpc.Creds(credentials.NewTLS(server.ServerConfig())))
	healthpb.RegisterHealthServer(s, &probe{traceID: make(chan string, 1)})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	client := identityOf(t, d, "delivery")
	for _, c := range []struct {
		expect string
		ok     bool
	}{{"teams", false}, {"query", true}} {
		cc, err := Dial(lis.Addr().String(), c.expect, client)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		_ = cc.Close()
		if c.ok && err != nil {
			t.Fatalf("expecting %s: %v", c.expect, err)
		}
		if !c.ok && (status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "this client connects to")) {
			t.Fatalf("expecting %s, a query server answered: %v", c.expect, err)
		}
	}
	if _, err := Dial(lis.Addr().String(), "", client); err == nil {
		t.Fatal("dialed without naming the service")
	}
}
