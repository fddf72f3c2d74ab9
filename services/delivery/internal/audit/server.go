package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/rpc"
	"github.com/crmslack/crmslack/libs/topology"
	deliveryv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/delivery/v1"
	integrationv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/integration/v1"
)

// Page sizes of ListDeliveries.
const (
	DefaultPageSize = 100
	MaxPageSize     = 1000
)

// Server implements DeliveryAuditService.
type Server struct {
	deliveryv1.UnimplementedDeliveryAuditServiceServer
	repo *Repository
}

// NewServer returns the gRPC service over repo.
func NewServer(repo *Repository) *Server { return &Server{repo: repo} }

func invalid(format string, a ...any) error {
	return &rpc.Error{Code: codes.InvalidArgument, Msg: fmt.Sprintf(format, a...)}
}

// ListDeliveries lists an org's delivery outcomes, newest first, optionally
// within [from, to) and of one status, a page at a time.
func (s *Server) ListDeliveries(ctx context.Context, req *deliveryv1.ListDeliveriesRequest) (*deliveryv1.ListDeliveriesResponse, error) {
	q := Query{OrgID: req.GetOrgId(), PageSize: int(req.GetPageSize()), Status: int32(req.GetStatus())}
	if q.OrgID == "" {
		return nil, invalid("org_id is required")
	}
	switch {
	case q.PageSize < 0:
		return nil, invalid("page_size must not be negative")
	case q.PageSize == 0:
		q.PageSize = DefaultPageSize
	case q.PageSize > MaxPageSize:
		q.PageSize = MaxPageSize
	}
	if _, ok := deliveryv1.DeliveryStatus_name[int32(req.GetStatus())]; !ok {
		return nil, invalid("unknown status %d", req.GetStatus())
	}
	if req.GetFrom() != nil {
		q.From = req.GetFrom().AsTime()
	}
	if req.GetTo() != nil {
		q.To = req.GetTo().AsTime()
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return nil, invalid("from must be before to")
	}
	if req.GetPageToken() != "" {
		c, err := DecodeCursor(req.GetPageToken())
		if err != nil {
			return nil, invalid("page_token: %v", err)
		}
		q.After = c
	}
	rows, next, err := s.repo.List(ctx, q)
	if err != nil {
		return nil, err
	}
	resp := &deliveryv1.ListDeliveriesResponse{Deliveries: make([]*deliveryv1.Delivery, 0, len(rows))}
	for _, r := range rows {
		resp.Deliveries = append(resp.Deliveries, r.proto())
	}
	if next != nil {
		resp.NextPageToken = EncodeCursor(*next)
	}
	return resp, nil
}

func (r Row) proto() *deliveryv1.Delivery {
	d := &deliveryv1.Delivery{
		CommandId: r.CommandID, IdempotencyKey: r.IdempotencyKey, OrgId: r.OrgID, TeamId: r.TeamID,
		ChannelId: r.ChannelID, Ts: r.TS, Status: deliveryv1.DeliveryStatus(r.Status),
		FailureCode: integrationv1.DeliveryFailureCode(r.FailureCode), Reason: r.Reason, Origin: r.Origin,
		Attempts: r.Attempts, Kind: r.Kind, CompletedAt: timestamppb.New(r.CompletedAt),
	}
	if !r.RequestedAt.IsZero() {
		d.RequestedAt = timestamppb.New(r.RequestedAt)
	}
	return d
}

// Durable consumer names of the projection; a name is a contract (renaming
// replays the INTEGRATION stream into the audit trail, which the row ids
// make harmless but slow).
const (
	DurableSucceeded = "delivery-audit-succeeded"
	DurableFailed    = "delivery-audit-failed"
)

// Retries of an audit row: its insert fails only while MongoDB does, so the
// row is retried for about two hours (1s, 5s, 15s, 1m, then every 5m) before
// it goes to the dead-letter subject, from which it can be replayed.
var (
	auditBackOff    = []time.Duration{time.Second, 5 * time.Second, 15 * time.Second, time.Minute, 5 * time.Minute}
	auditMaxDeliver = 30
)

// ConsumerSpec is the audit consumer durable for outcome ("succeeded" or
// "failed"), every setting chosen here rather than defaulted.
func ConsumerSpec(durable, outcome string, concurrency int) bus.ConsumerSpec {
	return bus.ConsumerSpec{
		Stream:         topology.StreamIntegration,
		Durable:        durable,
		FilterSubjects: []string{topology.Delivery("*", outcome)},
		// Handlers wait for their batch: a few hundred at once make a
		// batch worth its insert.
		Concurrency:   concurrency,
		MaxAckPending: concurrency * 8,
		// A batch insert takes well under a second; 30s is a hung store.
		AckWait:    30 * time.Second,
		MaxDeliver: auditMaxDeliver,
		BackOff:    auditBackOff,
	}
}

// Project subscribes the writer to the outcome events until ctx ends.
func Project(ctx context.Context, b *bus.Bus, w *Writer, concurrency int) error {
	spec := func(durable, outcome string) bus.ConsumerSpec { return ConsumerSpec(durable, outcome, concurrency) }
	succeeded, err := bus.Subscribe(ctx, b, spec(DurableSucceeded, "succeeded"), func(ctx context.Context, ev *integrationv1.DeliverySucceeded) error {
		return w.Write(ctx, FromSucceeded(ev))
	})
	if err != nil {
		return err
	}
	failed, err := bus.Subscribe(ctx, b, spec(DurableFailed, "failed"), func(ctx context.Context, ev *integrationv1.DeliveryFailed) error {
		return w.Write(ctx, FromFailed(ev))
	})
	if err != nil {
		_ = succeeded.Stop(context.Background())
		return err
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(succeeded.Stop(sctx), failed.Stop(sctx))
}
