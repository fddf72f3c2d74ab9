// Package grpcapi serves workflows.v1.WorkflowActionsService over the app
// layer: it converts requests and answers and maps refusals to gRPC codes
// at the edge; it holds no logic of its own.
package grpcapi

import (
	"context"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/crmslack/crmslack/libs/rpc"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"
	workflowsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/workflows/v1"

	"github.com/crmslack/crmslack/services/workflows/internal/app"
	"github.com/crmslack/crmslack/services/workflows/internal/pbconv"
	"github.com/crmslack/crmslack/services/workflows/internal/valuefmt"
)

// Server implements WorkflowActionsServiceServer.
type Server struct {
	workflowsv1.UnimplementedWorkflowActionsServiceServer
	svc *app.Service
}

// New returns the server.
func New(svc *app.Service) *Server { return &Server{svc: svc} }

// Register adds the service to s and marks it serving.
func Register(s *rpc.Server, srv *Server) {
	workflowsv1.RegisterWorkflowActionsServiceServer(s.Server, srv)
	s.Health.SetServingStatus(workflowsv1.WorkflowActionsService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
}

// edge hands refusals to libs/rpc, which maps each fault kind to its
// gRPC code in one place for every service.
func edge(err error) error { return rpc.ToStatus(err) }

func caller(c *teamsv1.Caller) app.Caller {
	return app.Caller{User: pbconv.Person(c.GetUser()), IsAdmin: c.GetIsAdmin()}
}

func (s *Server) CreateAction(ctx context.Context, req *workflowsv1.CreateActionRequest) (*workflowsv1.CreateActionResponse, error) {
	a, err := s.svc.Create(ctx, req.GetOrgId(), caller(req.GetCaller()), pbconv.Spec(req.GetSpec()))
	if err != nil {
		return nil, edge(err)
	}
	return &workflowsv1.CreateActionResponse{Action: pbconv.Action(a)}, nil
}

func (s *Server) UpdateAction(ctx context.Context, req *workflowsv1.UpdateActionRequest) (*workflowsv1.UpdateActionResponse, error) {
	a, err := s.svc.Update(ctx, req.GetOrgId(), caller(req.GetCaller()), req.GetActionId(), pbconv.Spec(req.GetSpec()), req.GetExpectedRevision())
	if err != nil {
		return nil, edge(err)
	}
	return &workflowsv1.UpdateActionResponse{Action: pbconv.Action(a)}, nil
}

func (s *Server) DeleteAction(ctx context.Context, req *workflowsv1.DeleteActionRequest) (*workflowsv1.DeleteActionResponse, error) {
	if err := s.svc.Delete(ctx, req.GetOrgId(), caller(req.GetCaller()), req.GetActionId()); err != nil {
		return nil, edge(err)
	}
	return &workflowsv1.DeleteActionResponse{}, nil
}

func (s *Server) GetAction(ctx context.Context, req *workflowsv1.GetActionRequest) (*workflowsv1.GetActionResponse, error) {
	a, err := s.svc.Get(ctx, req.GetOrgId(), req.GetActionId())
	if err != nil {
		return nil, edge(err)
	}
	return &workflowsv1.GetActionResponse{Action: pbconv.Action(a)}, nil
}

func (s *Server) ListActions(ctx context.Context, req *workflowsv1.ListActionsRequest) (*workflowsv1.ListActionsResponse, error) {
	as, err := s.svc.List(ctx, req.GetOrgId(), req.GetRuleId(), req.GetTeamId())
	if err != nil {
		return nil, edge(err)
	}
	out := &workflowsv1.ListActionsResponse{}
	for _, a := range as {
		out.Actions = append(out.Actions, pbconv.Action(a))
	}
	return out, nil
}

func (s *Server) ListHistory(ctx context.Context, req *workflowsv1.ListHistoryRequest) (*workflowsv1.ListHistoryResponse, error) {
	xs, err := s.svc.History(ctx, req.GetOrgId(), req.GetActionId(), req.GetRuleId(), int(req.GetLimit()))
	if err != nil {
		return nil, edge(err)
	}
	out := &workflowsv1.ListHistoryResponse{}
	for _, x := range xs {
		out.Executions = append(out.Executions, pbconv.Execution(x))
	}
	return out, nil
}

func formatPB(f valuefmt.Format) *workflowsv1.OrgFormat {
	return &workflowsv1.OrgFormat{Locale: f.Locale(), CurrencyCode: f.Currency(), TimeZone: f.TimeZone()}
}

func (s *Server) SetOrgFormat(ctx context.Context, req *workflowsv1.SetOrgFormatRequest) (*workflowsv1.SetOrgFormatResponse, error) {
	f := req.GetFormat()
	got, err := s.svc.SetFormat(ctx, req.GetOrgId(), caller(req.GetCaller()), f.GetLocale(), f.GetCurrencyCode(), f.GetTimeZone())
	if err != nil {
		return nil, edge(err)
	}
	return &workflowsv1.SetOrgFormatResponse{Format: formatPB(got)}, nil
}

func (s *Server) GetOrgFormat(ctx context.Context, req *workflowsv1.GetOrgFormatRequest) (*workflowsv1.GetOrgFormatResponse, error) {
	f, err := s.svc.Format(ctx, req.GetOrgId())
	if err != nil {
		return nil, edge(err)
	}
	return &workflowsv1.GetOrgFormatResponse{Format: formatPB(f)}, nil
}

func (s *Server) GetModuleSchema(ctx context.Context, req *workflowsv1.GetModuleSchemaRequest) (*workflowsv1.GetModuleSchemaResponse, error) {
	sc, err := s.svc.Schema(ctx, req.GetOrgId(), req.GetModule())
	if err != nil {
		return nil, edge(err)
	}
	return &workflowsv1.GetModuleSchemaResponse{Schema: sc}, nil
}
