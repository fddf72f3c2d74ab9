// Package rpc builds the gRPC servers and clients of every service the same
// way: mutual TLS always (libs/mtls), every call authorised by one table
// (Callers, callers.go) in one interceptor (authz.go), health and reflection
// on, panics recovered, domain errors turned into status codes only here at
// the edge, trace context carried in metadata, and a graceful stop.
package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/crmslack/crmslack/libs/crmauth"
	"github.com/crmslack/crmslack/libs/fault"
	"github.com/crmslack/crmslack/libs/lifecycle"
	"github.com/crmslack/crmslack/libs/mtls"
	"github.com/crmslack/crmslack/libs/tracectx"
)

// traceHeader is the W3C header name, used as gRPC metadata key as well.
const traceHeader = "traceparent"

// Server is a gRPC server with its health service.
type Server struct {
	*grpc.Server
	Health *health.Server
}

// Security is how a server authenticates and authorises its callers.
type Security struct {
	// Identity is the server's TLS identity; clients must present one from
	// the same CA. Required.
	Identity *mtls.Identity
	// CRMKeys verifies the CRM's credentials; nil refuses every CRM call.
	CRMKeys *crmauth.Keys
	// Registerer receives crmslack_rpc_refused_total; nil registers nowhere.
	Registerer prometheus.Registerer
	// Callers is the authorization table; nil means [Callers].
	Callers map[string]Rule
	// Now is the clock credentials are checked at; nil means time.Now.
	Now func() time.Time
}

// NewServer returns a server over mutual TLS that authorises every call by
// the table, with panic recovery, trace propagation, request logging and
// error translation, plus health and reflection services.
func NewServer(log *slog.Logger, sec Security, opts ...grpc.ServerOption) (*Server, error) {
	if sec.Identity == nil {
		return nil, errors.New("rpc: a server needs a TLS identity (TLS_CERT_FILE, TLS_KEY_FILE, TLS_CA_FILE)")
	}
	a := &authorizer{table: sec.Callers, keys: sec.CRMKeys, now: sec.Now, log: log,
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crmslack_rpc_refused_total",
			Help: "gRPC calls refused by the authorization table, by method, peer identity and reason.",
		}, []string{"method", "peer", "reason"})}
	if a.table == nil {
		a.table = Callers
	}
	if a.now == nil {
		a.now = time.Now
	}
	if sec.Registerer != nil {
		if err := sec.Registerer.Register(a.refused); err != nil {
			return nil, fmt.Errorf("rpc: registering metrics: %w", err)
		}
	}
	opts = append(opts,
		grpc.Creds(credentials.NewTLS(sec.Identity.ServerConfig())),
		grpc.ChainUnaryInterceptor(serverInterceptor(log), a.unary),
		grpc.ChainStreamInterceptor(a.stream),
	)
	s := grpc.NewServer(opts...)
	h := health.NewServer()
	healthpb.RegisterHealthServer(s, h)
	reflection.Register(s)
	return &Server{Server: s, Health: h}, nil
}

// Part serves s on lis until ctx ends, then stops gracefully, forcing a stop
// after the shutdown timeout so a stuck client cannot hold the process.
func (s *Server) Part(name string, lis net.Listener) lifecycle.Part {
	return lifecycle.Part{Name: name, Run: func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- s.Serve(lis) }()
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
		}
		s.Health.Shutdown()
		stopped := make(chan struct{})
		go func() { s.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(lifecycle.ShutdownTimeout):
			s.Stop()
		}
		return nil
	}}
}

func serverInterceptor(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		if md, ok := metadata.FromIncomingContext(ctx); ok {
			if v := md.Get(traceHeader); len(v) > 0 {
				if tc, perr := tracectx.Parse(v[0]); perr == nil {
					ctx = tracectx.WithTrace(ctx, tc.Child())
				}
			}
		}
		ctx = tracectx.Ensure(ctx)
		start := time.Now()
		defer func() {
			if p := recover(); p != nil {
				log.ErrorContext(ctx, "grpc handler panicked", "method", info.FullMethod, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				err = status.Error(codes.Internal, "internal error")
			}
			code := status.Code(err)
			level := slog.LevelDebug
			if code == codes.Internal || code == codes.Unknown || code == codes.DataLoss {
				level = slog.LevelError
			}
			log.Log(ctx, level, "grpc call", "method", info.FullMethod, "code", code.String(), "ms", time.Since(start).Milliseconds(), "err", err)
		}()
		resp, err = handler(ctx, req)
		return resp, ToStatus(err)
	}
}

// Coded is implemented by domain errors that know their gRPC code. Domain
// packages implement it without importing gRPC, by returning a codes.Code.
type Coded interface {
	error
	GRPCCode() codes.Code
}

// faultCodes is the one mapping of domain failure kinds to gRPC codes.
var faultCodes = []struct {
	kind error
	code codes.Code
}{
	{fault.Invalid, codes.InvalidArgument},
	{fault.NotFound, codes.NotFound},
	{fault.Denied, codes.PermissionDenied},
	{fault.Precondition, codes.FailedPrecondition},
	{fault.Conflict, codes.Aborted},
	{fault.Exists, codes.AlreadyExists},
	{fault.Unavailable, codes.Unavailable},
}

// ToStatus turns a handler error into a status error. Errors that already are
// status errors pass through; a *fault.Error anywhere in the chain maps its
// kind to a code (faultCodes) with its message; errors implementing Coded use
// their code and message; context errors map to their codes; everything else
// is Internal with a generic message, so internals never leak to callers.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var c Coded
	var fe *fault.Error
	switch {
	case errors.As(err, &fe):
		for _, fc := range faultCodes {
			if errors.Is(fe.Kind, fc.kind) {
				return status.Error(fc.code, fe.Msg)
			}
		}
		return status.Error(codes.Internal, "internal error")
	case errors.As(err, &c):
		return status.Error(c.GRPCCode(), err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Error(codes.Internal, "internal error")
}

// Error is a ready-made Coded error for domain packages.
type Error struct {
	Code codes.Code
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// GRPCCode reports the code.
func (e *Error) GRPCCode() codes.Code { return e.Code }

// Dial connects to service (its identity, libs/identity) over mutual TLS as
// id: a server at target proving another identity is refused. target is
// host:port or any gRPC target; the connection carries trace context to the
// server.
func Dial(target, service string, id *mtls.Identity, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	if id == nil {
		return nil, fmt.Errorf("dialing %s: no TLS identity (TLS_CERT_FILE, TLS_KEY_FILE, TLS_CA_FILE)", target)
	}
	if service == "" {
		return nil, fmt.Errorf("dialing %s: no service named to expect there", target)
	}
	opts = append([]grpc.DialOption{
		grpc.WithTransportCredentials(credentials.NewTLS(id.ClientConfig(service))),
		grpc.WithChainUnaryInterceptor(clientInterceptor),
	}, opts...)
	cc, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", target, err)
	}
	return cc, nil
}

func clientInterceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if tc, ok := tracectx.FromContext(ctx); ok {
		ctx = metadata.AppendToOutgoingContext(ctx, traceHeader, tc.String())
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}
