// Package rpc builds the gRPC servers and clients of every service the same
// way: health and reflection on, panics recovered, domain errors turned into
// status codes only here at the edge, trace context carried in metadata, and
// a graceful stop.
package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/crmslack/crmslack/libs/fault"
	"github.com/crmslack/crmslack/libs/lifecycle"
	"github.com/crmslack/crmslack/libs/tracectx"
)

// traceHeader is the W3C header name, used as gRPC metadata key as well.
const traceHeader = "traceparent"

// Server is a gRPC server with its health service.
type Server struct {
	*grpc.Server
	Health *health.Server
}

// NewServer returns a server with panic recovery, trace propagation, request
// logging and error translation, plus health and reflection services.
func NewServer(log *slog.Logger, opts ...grpc.ServerOption) *Server {
	opts = append(opts, grpc.ChainUnaryInterceptor(serverInterceptor(log)))
	s := grpc.NewServer(opts...)
	h := health.NewServer()
	healthpb.RegisterHealthServer(s, h)
	reflection.Register(s)
	return &Server{Server: s, Health: h}
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

// Dial connects to a service. target is host:port or any gRPC target; the
// connection carries trace context to the server.
func Dial(target string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	opts = append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
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
