// Package grpcapi serves reminders.v1.ReminderPreferencesService over the
// app layer; libs/rpc maps the app's fault kinds to gRPC codes.
package grpcapi

import (
	"context"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/crmslack/crmslack/libs/rpc"
	remindersv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/reminders/v1"

	"github.com/crmslack/crmslack/services/reminders/internal/app"
)

// Server implements ReminderPreferencesServiceServer.
type Server struct {
	remindersv1.UnimplementedReminderPreferencesServiceServer
	svc *app.Service
}

// New returns the server.
func New(svc *app.Service) *Server { return &Server{svc: svc} }

// Register adds the service to s and marks it serving.
func Register(s *rpc.Server, srv *Server) {
	remindersv1.RegisterReminderPreferencesServiceServer(s.Server, srv)
	s.Health.SetServingStatus(remindersv1.ReminderPreferencesService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
}

// GetPreferences implements the RPC.
func (s *Server) GetPreferences(ctx context.Context, req *remindersv1.GetPreferencesRequest) (*remindersv1.GetPreferencesResponse, error) {
	p, err := s.svc.GetPreferences(ctx, req.GetOrgId(), req.GetCrmUserId())
	if err != nil {
		return nil, err
	}
	return &remindersv1.GetPreferencesResponse{Preferences: p}, nil
}

// SetPreferences implements the RPC.
func (s *Server) SetPreferences(ctx context.Context, req *remindersv1.SetPreferencesRequest) (*remindersv1.SetPreferencesResponse, error) {
	p, err := s.svc.SetPreferences(ctx, req)
	if err != nil {
		return nil, err
	}
	return &remindersv1.SetPreferencesResponse{Preferences: p}, nil
}
