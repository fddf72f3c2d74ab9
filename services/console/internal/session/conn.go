package session

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/crmslack/crmslack/libs/crmauth"
)

// Conn is a gRPC connection whose every call carries the credential of the
// session in its context; a call without a session is not sent.
type Conn struct{ CC grpc.ClientConnInterface }

// Invoke implements grpc.ClientConnInterface.
func (c Conn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	s, ok := From(ctx)
	if !ok {
		return status.Error(codes.Unauthenticated, "console: no session for "+method)
	}
	return c.CC.Invoke(ctx, method, args, reply, append(opts, grpc.PerRPCCredentials(crmauth.Bearer(s.Token)))...)
}

// NewStream implements grpc.ClientConnInterface.
func (c Conn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s, ok := From(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "console: no session for "+method)
	}
	return c.CC.NewStream(ctx, desc, method, append(opts, grpc.PerRPCCredentials(crmauth.Bearer(s.Token)))...)
}
