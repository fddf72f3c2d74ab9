// Package grpcapi serves sharing.v1.SharingService over the app layer: it
// converts requests and answers; share errors leave as they are and libs/rpc
// maps their libs/fault kind to a status code. It holds no logic of its own.
package grpcapi

import (
	"context"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/rpc"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	sharingv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/sharing/v1"

	"github.com/crmslack/crmslack/services/sharing/internal/app"
	"github.com/crmslack/crmslack/services/sharing/internal/share"
)

// Server implements SharingServiceServer.
type Server struct {
	sharingv1.UnimplementedSharingServiceServer
	svc *app.Service
}

// New returns the server.
func New(svc *app.Service) *Server { return &Server{svc: svc} }

// Register adds the service to s and marks it serving.
func Register(s *rpc.Server, srv *Server) {
	sharingv1.RegisterSharingServiceServer(s.Server, srv)
	s.Health.SetServingStatus(sharingv1.SharingService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
}

// ShareRecord shares a record's card.
func (s *Server) ShareRecord(ctx context.Context, req *sharingv1.ShareRecordRequest) (*sharingv1.ShareRecordResponse, error) {
	r, err := s.svc.ShareRecord(ctx, req, share.ViaGRPC, "")
	if err != nil {
		return nil, err
	}
	return &sharingv1.ShareRecordResponse{ShareId: r.ShareID, CommandIds: r.CommandIDs}, nil
}

// ShareChart shares a report's chart.
func (s *Server) ShareChart(ctx context.Context, req *sharingv1.ShareChartRequest) (*sharingv1.ShareChartResponse, error) {
	r, err := s.svc.ShareChart(ctx, req, share.ViaGRPC, "")
	if err != nil {
		return nil, err
	}
	out := &sharingv1.ShareChartResponse{ShareId: r.ShareID}
	if len(r.CommandIDs) > 0 {
		out.CommandId = r.CommandIDs[0]
	}
	return out, nil
}

// ListTargets lists a sharer's teams and one team's channels and people.
func (s *Server) ListTargets(ctx context.Context, req *sharingv1.ListTargetsRequest) (*sharingv1.ListTargetsResponse, error) {
	t, err := s.svc.ListTargets(ctx, req.GetOrgId(), req.GetSharerEmail(), req.GetTeamId())
	if err != nil {
		return nil, err
	}
	out := &sharingv1.ListTargetsResponse{}
	for _, tm := range t.Teams {
		out.Teams = append(out.Teams, &sharingv1.TargetTeam{TeamId: tm.ID, Name: tm.Name, Domain: tm.Domain})
	}
	for _, c := range t.Channels {
		out.Channels = append(out.Channels, &sharingv1.TargetChannel{Id: c.ID, Name: c.Name, IsPrivate: c.Private})
	}
	for _, u := range t.Users {
		out.Users = append(out.Users, &sharingv1.TargetUser{Id: u.ID, Name: u.Name, RealName: u.RealName, Email: u.Email})
	}
	return out, nil
}

// ListShares lists an org's recorded shares.
func (s *Server) ListShares(ctx context.Context, req *sharingv1.ListSharesRequest) (*sharingv1.ListSharesResponse, error) {
	q := app.SharesQuery{Org: req.GetOrgId(), SharerID: req.GetSharerId(), PageSize: int(req.GetPageSize()), PageToken: req.GetPageToken()}
	if req.GetFrom() != nil {
		q.From = req.GetFrom().AsTime()
	}
	if req.GetTo() != nil {
		q.To = req.GetTo().AsTime()
	}
	list, next, err := s.svc.ListShares(ctx, q)
	if err != nil {
		return nil, err
	}
	out := &sharingv1.ListSharesResponse{NextPageToken: next, Shares: make([]*sharingv1.Share, len(list))}
	for i, l := range list {
		var by *commonv1.CrmUserRef
		if l.Sharer != (share.Person{}) {
			by = &commonv1.CrmUserRef{Id: l.Sharer.ID, Name: l.Sharer.Name, Email: l.Sharer.Email}
		}
		out.Shares[i] = &sharingv1.Share{
			ShareId: l.ID, OrgId: l.Org, Sharer: by, Kind: l.Kind, What: l.What, TeamId: l.Team, Targets: l.Targets,
			SharedAt: timestamppb.New(l.SharedAt), Outcome: l.Outcome, OutcomeDetail: l.Detail, SharerSlackUserId: l.SharerSlackUser,
		}
	}
	return out, nil
}
