// Package grpcapi serves teams.v1.TeamRegistryService over the app layer.
// It converts requests and answers; domain errors leave as they are and
// libs/rpc maps their libs/fault kind to a status code. It holds no logic.
package grpcapi

import (
	"context"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/crmslack/crmslack/libs/rpc"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"

	"github.com/crmslack/crmslack/services/teams/internal/app"
	"github.com/crmslack/crmslack/services/teams/internal/pbconv"
	"github.com/crmslack/crmslack/services/teams/internal/registry"
)

// Server implements TeamRegistryServiceServer.
type Server struct {
	teamsv1.UnimplementedTeamRegistryServiceServer
	svc *app.Service
}

// New returns the server.
func New(svc *app.Service) *Server { return &Server{svc: svc} }

// Register adds the service to s.
func Register(s *rpc.Server, srv *Server) {
	teamsv1.RegisterTeamRegistryServiceServer(s.Server, srv)
	s.Health.SetServingStatus(teamsv1.TeamRegistryService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
}

// ListTeams lists an org's teams.
func (s *Server) ListTeams(ctx context.Context, req *teamsv1.ListTeamsRequest) (*teamsv1.ListTeamsResponse, error) {
	teams, enabled, err := s.svc.ListTeams(ctx, req.GetOrgId(), req.GetMemberEmail(), req.GetIncludeRemoved())
	if err != nil {
		return nil, err
	}
	out := &teamsv1.ListTeamsResponse{IntegrationEnabled: enabled}
	for i := range teams {
		out.Teams = append(out.Teams, pbconv.OrgTeam(&teams[i]))
	}
	if req.GetMemberEmail() == "" {
		use, err := s.svc.TokenKeyUse(ctx, req.GetOrgId())
		if err != nil {
			return nil, err
		}
		for _, u := range use {
			out.TokenKeys = append(out.TokenKeys, &teamsv1.TokenKeyUse{KeyId: u.KeyID, Rows: uint32(u.Rows), Current: u.Current})
		}
	}
	return out, nil
}

// GetTeam returns one team.
func (s *Server) GetTeam(ctx context.Context, req *teamsv1.GetTeamRequest) (*teamsv1.GetTeamResponse, error) {
	t, err := s.svc.GetTeam(ctx, req.GetOrgId(), req.GetTeamId())
	if err != nil {
		return nil, err
	}
	return &teamsv1.GetTeamResponse{Team: pbconv.OrgTeam(&t)}, nil
}

// BeginInstall returns the Add-to-Slack URL.
func (s *Server) BeginInstall(ctx context.Context, req *teamsv1.BeginInstallRequest) (*teamsv1.BeginInstallResponse, error) {
	u, err := s.svc.BeginInstall(ctx, req.GetOrgId(), pbconv.Caller(req.GetCaller()), req.GetTeamHint())
	if err != nil {
		return nil, err
	}
	return &teamsv1.BeginInstallResponse{InstallUrl: u}, nil
}

// CompleteInstall stores a verified OAuth exchange.
func (s *Server) CompleteInstall(ctx context.Context, req *teamsv1.CompleteInstallRequest) (*teamsv1.CompleteInstallResponse, error) {
	if req.GetTeam() == nil {
		return nil, registry.Invalid("team is required")
	}
	in := app.CompleteInstallInput{
		OrgID:        req.GetOrgId(),
		By:           pbconv.UserFrom(req.GetInstalledBy()),
		Team:         pbconv.TeamInfoFrom(req.GetTeam()),
		BotToken:     req.GetBotToken(),
		RefreshToken: req.GetRefreshToken(),
	}
	if req.GetTokenExpiresAt() != nil {
		in.ExpiresAt = req.GetTokenExpiresAt().AsTime()
	}
	t, reinstall, err := s.svc.CompleteInstall(ctx, in)
	if err != nil {
		return nil, err
	}
	return &teamsv1.CompleteInstallResponse{Team: pbconv.OrgTeam(&t), Reinstall: reinstall}, nil
}

// RemoveTeam removes a team from an org.
func (s *Server) RemoveTeam(ctx context.Context, req *teamsv1.RemoveTeamRequest) (*teamsv1.RemoveTeamResponse, error) {
	if err := s.svc.RemoveTeam(ctx, req.GetOrgId(), req.GetTeamId(), pbconv.Caller(req.GetCaller())); err != nil {
		return nil, err
	}
	return &teamsv1.RemoveTeamResponse{}, nil
}

// DisableIntegration turns an org's integration off.
func (s *Server) DisableIntegration(ctx context.Context, req *teamsv1.DisableIntegrationRequest) (*teamsv1.DisableIntegrationResponse, error) {
	if err := s.svc.SetIntegration(ctx, req.GetOrgId(), false, pbconv.Caller(req.GetCaller())); err != nil {
		return nil, err
	}
	return &teamsv1.DisableIntegrationResponse{}, nil
}

// EnableIntegration turns an org's integration back on.
func (s *Server) EnableIntegration(ctx context.Context, req *teamsv1.EnableIntegrationRequest) (*teamsv1.EnableIntegrationResponse, error) {
	if err := s.svc.SetIntegration(ctx, req.GetOrgId(), true, pbconv.Caller(req.GetCaller())); err != nil {
		return nil, err
	}
	return &teamsv1.EnableIntegrationResponse{}, nil
}

// GetIntegration reports an org's switch.
func (s *Server) GetIntegration(ctx context.Context, req *teamsv1.GetIntegrationRequest) (*teamsv1.GetIntegrationResponse, error) {
	in, err := s.svc.GetIntegration(ctx, req.GetOrgId())
	if err != nil {
		return nil, err
	}
	return &teamsv1.GetIntegrationResponse{Enabled: in.Enabled, ActiveTeams: int32(in.ActiveTeams), ChangedAt: pbconv.Timestamp(in.ChangedAt)}, nil
}

// GetBotToken gives the egress a usable token.
func (s *Server) GetBotToken(ctx context.Context, req *teamsv1.GetBotTokenRequest) (*teamsv1.GetBotTokenResponse, error) {
	t, err := s.svc.GetBotToken(ctx, req.GetOrgId(), req.GetTeamId())
	if err != nil {
		return nil, err
	}
	return &teamsv1.GetBotTokenResponse{BotToken: t.Token, BotUserId: t.BotUserID, ExpiresAt: pbconv.Timestamp(t.ExpiresAt)}, nil
}

// ReportTokenFailure handles a dead or expired token.
func (s *Server) ReportTokenFailure(ctx context.Context, req *teamsv1.ReportTokenFailureRequest) (*teamsv1.ReportTokenFailureResponse, error) {
	r, err := s.svc.ReportTokenFailure(ctx, req.GetOrgId(), req.GetTeamId(), req.GetSlackError())
	if err != nil {
		return nil, err
	}
	return &teamsv1.ReportTokenFailureResponse{Refreshed: r.Refreshed, Status: pbconv.Status(r.Status)}, nil
}

// ResolveTeam maps a Slack team to its orgs.
func (s *Server) ResolveTeam(ctx context.Context, req *teamsv1.ResolveTeamRequest) (*teamsv1.ResolveTeamResponse, error) {
	orgs, enabled, err := s.svc.ResolveTeam(ctx, req.GetTeamId())
	if err != nil {
		return nil, err
	}
	return &teamsv1.ResolveTeamResponse{OrgIds: orgs, IntegrationEnabled: enabled}, nil
}

// GetSlackUser returns a Slack user's profile.
func (s *Server) GetSlackUser(ctx context.Context, req *teamsv1.GetSlackUserRequest) (*teamsv1.GetSlackUserResponse, error) {
	u, err := s.svc.GetSlackUser(ctx, req.GetTeamId(), req.GetUserId())
	if err != nil {
		return nil, err
	}
	return &teamsv1.GetSlackUserResponse{Email: u.Email, RealName: u.RealName, Deleted: u.Deleted}, nil
}

// ListDirectory lists a team's channels and people.
func (s *Server) ListDirectory(ctx context.Context, req *teamsv1.ListDirectoryRequest) (*teamsv1.ListDirectoryResponse, error) {
	d, err := s.svc.ListDirectory(ctx, req.GetOrgId(), req.GetTeamId())
	if err != nil {
		return nil, err
	}
	out := &teamsv1.ListDirectoryResponse{
		Channels:  make([]*teamsv1.DirectoryChannel, 0, len(d.Channels)),
		Users:     make([]*teamsv1.DirectoryUser, 0, len(d.Users)),
		FetchedAt: pbconv.Timestamp(d.FetchedAt),
	}
	for _, c := range d.Channels {
		out.Channels = append(out.Channels, &teamsv1.DirectoryChannel{Id: c.ID, Name: c.Name, IsPrivate: c.Private, IsMember: c.Member, CanPost: c.CanPost})
	}
	for _, u := range d.Users {
		out.Users = append(out.Users, &teamsv1.DirectoryUser{Id: u.ID, Name: u.Name, RealName: u.RealName, Email: u.Email})
	}
	return out, nil
}
