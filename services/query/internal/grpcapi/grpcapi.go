// Package grpcapi serves crmslack.query.v1.QueryService: the gateway's
// synchronous /zcrm answers and record look-ups, translating domain
// outcomes to gRPC codes at this edge only.
package grpcapi

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/crmslack/crmslack/libs/rpc"
	queryv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/query/v1"
	"github.com/crmslack/crmslack/services/query/internal/app"
	"github.com/crmslack/crmslack/services/query/internal/projection"
)

// Server implements QueryService.
type Server struct {
	queryv1.UnimplementedQueryServiceServer
	svc     *app.Service
	records *projection.Store
	metrics *app.Metrics
	log     *slog.Logger
	// ready reports whether the projection has been rebuilt; before that
	// every call is Unavailable, never an answer from half the data.
	ready func() bool
}

// New returns the server.
func New(svc *app.Service, records *projection.Store, m *app.Metrics, log *slog.Logger, ready func() bool) *Server {
	return &Server{svc: svc, records: records, metrics: m, log: log, ready: ready}
}

func (s *Server) checkReady() error {
	if !s.ready() {
		return &rpc.Error{Code: codes.Unavailable, Msg: "the record projection is still loading"}
	}
	return nil
}

// RunSlashCommand answers a /zcrm command. It reads memory only (and, for a
// caller it has not seen lately, asks the team registry for their email),
// so it answers in about a millisecond plus the search.
func (s *Server) RunSlashCommand(ctx context.Context, req *queryv1.RunSlashCommandRequest) (*queryv1.RunSlashCommandResponse, error) {
	if err := s.checkReady(); err != nil {
		return nil, err
	}
	if req.GetTeamId() == "" || req.GetSlackUserId() == "" {
		return nil, &rpc.Error{Code: codes.InvalidArgument, Msg: "team_id and slack_user_id are required"}
	}
	start := time.Now()
	a, err := s.svc.Answer(ctx, app.Request{Org: req.GetOrgId(), Team: req.GetTeamId(), User: req.GetSlackUserId(), Channel: req.GetChannelId(), Text: req.GetText()})
	if err != nil {
		s.metrics.Observe("sync", "error", time.Since(start))
		if errors.Is(err, app.ErrDependency) {
			return nil, &rpc.Error{Code: codes.Unavailable, Msg: "cannot identify the caller right now", Err: err}
		}
		return nil, err
	}
	blocks, err := a.JSON()
	if err != nil {
		return nil, err
	}
	s.metrics.Observe("sync", a.Outcome, time.Since(start))
	s.log.DebugContext(ctx, "slash command answered", "team", req.GetTeamId(), "org", a.Org, "outcome", a.Outcome,
		"total", a.Total, "command_event_id", req.GetCommandEventId(), "ms", time.Since(start).Milliseconds())
	return &queryv1.RunSlashCommandResponse{
		Text:         a.Text,
		BlocksJson:   blocks,
		Total:        int64(a.Total),
		UnderstoodAs: a.UnderstoodAs,
		Refused:      a.Refused,
	}, nil
}

// GetRecord returns one record of the projection with its module's schema.
func (s *Server) GetRecord(_ context.Context, req *queryv1.GetRecordRequest) (*queryv1.GetRecordResponse, error) {
	if err := s.checkReady(); err != nil {
		return nil, err
	}
	if req.GetOrgId() == "" || req.GetModule() == "" || req.GetRecordId() == "" {
		return nil, &rpc.Error{Code: codes.InvalidArgument, Msg: "org_id, module and record_id are required"}
	}
	rec, ok, err := s.records.Get(req.GetOrgId(), req.GetModule(), req.GetRecordId())
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &rpc.Error{Code: codes.NotFound, Msg: "no such record in the projection"}
	}
	schema, _ := s.records.Schema(req.GetOrgId(), req.GetModule())
	return &queryv1.GetRecordResponse{Record: rec, Schema: schema}, nil
}

// IsCrmUser says whether the email is an active CRM user of the org.
func (s *Server) IsCrmUser(_ context.Context, req *queryv1.IsCrmUserRequest) (*queryv1.IsCrmUserResponse, error) {
	if err := s.checkReady(); err != nil {
		return nil, err
	}
	if req.GetOrgId() == "" || req.GetEmail() == "" {
		return nil, &rpc.Error{Code: codes.InvalidArgument, Msg: "org_id and email are required"}
	}
	_, ok := s.svc.Users.Lookup(req.GetOrgId(), req.GetEmail())
	return &queryv1.IsCrmUserResponse{Active: ok}, nil
}
