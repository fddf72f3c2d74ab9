package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

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

// Durable consumer names that fed the audit trail from the outcome events
// before delivery's settler wrote the rows itself. Their consumers, where
// an earlier version left them, are drained and removed ([DrainLegacy]).
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
		// A batch insert takes well under a second; the default handler
		// time (27 s) is a hung store.
		MaxDeliver: auditMaxDeliver,
		BackOff:    auditBackOff,
	}
}

// drainPoll is how often a legacy durable is checked for what it has left;
// well under libs/bus's consumer check interval (5s), see drain.
const drainPoll = time.Second

// DrainLegacy writes the rows of the outcomes that the legacy audit durables
// still hold (published by an earlier version, not yet in the trail), then
// deletes each durable once it holds nothing. Durables that do not exist
// are left alone; it returns when both are gone or ctx ends.
func DrainLegacy(ctx context.Context, b *bus.Bus, w *Writer, concurrency int, log *slog.Logger) error {
	var g errgroup.Group
	g.Go(func() error {
		return drain(ctx, b, ConsumerSpec(DurableSucceeded, "succeeded", concurrency), log, func(ctx context.Context, ev *integrationv1.DeliverySucceeded) error {
			return w.Write(ctx, FromSucceeded(ev))
		})
	})
	g.Go(func() error {
		return drain(ctx, b, ConsumerSpec(DurableFailed, "failed", concurrency), log, func(ctx context.Context, ev *integrationv1.DeliveryFailed) error {
			return w.Write(ctx, FromFailed(ev))
		})
	})
	return g.Wait()
}

func drain[T bus.Event](ctx context.Context, b *bus.Bus, spec bus.ConsumerSpec, log *slog.Logger, h bus.Handler[T]) error {
	js := b.JetStream()
	if _, err := js.Consumer(ctx, spec.Stream, spec.Durable); errors.Is(err, jetstream.ErrConsumerNotFound) || ctx.Err() != nil {
		return nil
	} else if err != nil {
		return fmt.Errorf("reading legacy audit durable %s: %w", spec.Durable, err)
	}
	log.InfoContext(ctx, "draining a legacy audit durable", "durable", spec.Durable)
	sub, err := bus.Subscribe(ctx, b, spec, h)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = sub.Stop(sctx)
	}()
	t := time.NewTicker(drainPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		cons, err := js.Consumer(ctx, spec.Stream, spec.Durable)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			// Another replica drained and deleted it: stop before the
			// subscription's watchdog re-creates it (after two checks),
			// which would replay every outcome into the trail.
			log.InfoContext(ctx, "legacy audit durable deleted by another replica", "durable", spec.Durable)
			return nil
		}
		if err != nil {
			continue // read again at the next tick
		}
		if info := cons.CachedInfo(); info.NumPending > 0 || info.NumAckPending > 0 || info.NumRedelivered > 0 {
			continue
		}
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = sub.Stop(sctx)
		cancel()
		if err != nil {
			return fmt.Errorf("stopping legacy audit durable %s: %w", spec.Durable, err)
		}
		if err := js.DeleteConsumer(ctx, spec.Stream, spec.Durable); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return fmt.Errorf("deleting legacy audit durable %s: %w", spec.Durable, err)
		}
		log.InfoContext(ctx, "legacy audit durable drained and deleted", "durable", spec.Durable)
		return nil
	}
}
