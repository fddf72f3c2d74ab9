// Package grpcapi serves signals.v1.SalesSignalsSettingsService over the
// app layer: it converts requests and answers, and holds no logic.
package grpcapi

import (
	"context"
	"maps"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/rpc"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	signalsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/signals/v1"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"

	"github.com/crmslack/crmslack/services/signals/internal/app"
	"github.com/crmslack/crmslack/services/signals/internal/matrix"
)

// Server implements SalesSignalsSettingsServiceServer.
type Server struct {
	signalsv1.UnimplementedSalesSignalsSettingsServiceServer
	svc *app.Service
}

// New returns the server.
func New(svc *app.Service) *Server { return &Server{svc: svc} }

// Register adds the service to s and marks it serving.
func Register(s *rpc.Server, srv *Server) {
	signalsv1.RegisterSalesSignalsSettingsServiceServer(s.Server, srv)
	s.Health.SetServingStatus(signalsv1.SalesSignalsSettingsService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
}

// answer converts a result; the app's errors are fault kinds, which
// libs/rpc's interceptor maps to their codes.
func answer(st matrix.Settings, err error) (*signalsv1.Settings, error) {
	if err != nil {
		return nil, err
	}
	return Settings(st), nil
}

// Settings is st as the API shows it: every cell, with its default.
func Settings(st matrix.Settings) *signalsv1.Settings {
	out := &signalsv1.Settings{
		OrgId: st.Org, DefaultTeamId: st.DefaultTeam, OwnerTeams: maps.Clone(st.OwnerTeams), Version: int64(st.Version),
	}
	for _, c := range st.Matrix.Cells() {
		out.Cells = append(out.Cells, &signalsv1.Cell{
			Channel: c.Channel, Kind: c.Kind, Slack: c.Enabled, DefaultSlack: c.Default,
			Label: matrix.ChannelName(c.Channel) + " / " + c.Label,
		})
	}
	if !st.UpdatedAt.IsZero() {
		out.UpdatedAt = timestamppb.New(st.UpdatedAt)
	}
	if st.UpdatedBy != (matrix.Person{}) {
		out.UpdatedBy = &commonv1.CrmUserRef{Id: st.UpdatedBy.ID, Name: st.UpdatedBy.Name, Email: st.UpdatedBy.Email}
	}
	return out
}

func caller(c *teamsv1.Caller) app.Caller {
	u := c.GetUser()
	return app.Caller{User: matrix.Person{ID: u.GetId(), Name: u.GetName(), Email: u.GetEmail()}, IsAdmin: c.GetIsAdmin()}
}

func cells(in []*signalsv1.Cell) map[matrix.Key]bool {
	out := make(map[matrix.Key]bool, len(in))
	for _, c := range in {
		out[matrix.Key{Channel: c.GetChannel(), Kind: c.GetKind()}] = c.GetSlack()
	}
	return out
}

func version(v int64) uint64 {
	if v < 0 {
		return 0
	}
	return uint64(v)
}

// GetSettings returns an org's settings.
func (s *Server) GetSettings(_ context.Context, req *signalsv1.GetSettingsRequest) (*signalsv1.GetSettingsResponse, error) {
	st, err := answer(s.svc.Settings(req.GetOrgId()))
	if err != nil {
		return nil, err
	}
	return &signalsv1.GetSettingsResponse{Settings: st}, nil
}

// UpdateCells ticks or unticks cells.
func (s *Server) UpdateCells(ctx context.Context, req *signalsv1.UpdateCellsRequest) (*signalsv1.UpdateCellsResponse, error) {
	st, err := answer(s.svc.UpdateCells(ctx, req.GetOrgId(), caller(req.GetCaller()), cells(req.GetCells()), version(req.GetExpectedVersion())))
	if err != nil {
		return nil, err
	}
	return &signalsv1.UpdateCellsResponse{Settings: st}, nil
}

// ReplaceMatrix sets the whole matrix.
func (s *Server) ReplaceMatrix(ctx context.Context, req *signalsv1.ReplaceMatrixRequest) (*signalsv1.ReplaceMatrixResponse, error) {
	st, err := answer(s.svc.ReplaceMatrix(ctx, req.GetOrgId(), caller(req.GetCaller()), cells(req.GetCells()), version(req.GetExpectedVersion())))
	if err != nil {
		return nil, err
	}
	return &signalsv1.ReplaceMatrixResponse{Settings: st}, nil
}

// ResetSettings puts the matrix back to the defaults.
func (s *Server) ResetSettings(ctx context.Context, req *signalsv1.ResetSettingsRequest) (*signalsv1.ResetSettingsResponse, error) {
	st, err := answer(s.svc.Reset(ctx, req.GetOrgId(), caller(req.GetCaller())))
	if err != nil {
		return nil, err
	}
	return &signalsv1.ResetSettingsResponse{Settings: st}, nil
}

// SetDefaultTeam names the org's default team.
func (s *Server) SetDefaultTeam(ctx context.Context, req *signalsv1.SetDefaultTeamRequest) (*signalsv1.SetDefaultTeamResponse, error) {
	st, err := answer(s.svc.SetDefaultTeam(ctx, req.GetOrgId(), caller(req.GetCaller()), req.GetTeamId()))
	if err != nil {
		return nil, err
	}
	return &signalsv1.SetDefaultTeamResponse{Settings: st}, nil
}

// SetOwnerTeam records an owner's team.
func (s *Server) SetOwnerTeam(ctx context.Context, req *signalsv1.SetOwnerTeamRequest) (*signalsv1.SetOwnerTeamResponse, error) {
	st, err := answer(s.svc.SetOwnerTeam(ctx, req.GetOrgId(), caller(req.GetCaller()), req.GetOwnerId(), req.GetTeamId()))
	if err != nil {
		return nil, err
	}
	return &signalsv1.SetOwnerTeamResponse{Settings: st}, nil
}
