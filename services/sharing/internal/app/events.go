package app

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/crmslack/crmslack/libs/bus"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	integrationv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/integration/v1"
	sharingv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/sharing/v1"

	"github.com/crmslack/crmslack/services/sharing/internal/share"
)

// busRequest checks a share asked for through the bus: its envelope's org
// must be the request's, it must be recent, and without a request id the
// event id stands for one (so a redelivery shares once).
func (s *Service) busRequest(env *commonv1.Envelope, org string, requestID *string) error {
	if env.GetOrgId() != org {
		return invalid("the envelope's org %q is not the request's org %q", env.GetOrgId(), org)
	}
	if at := env.GetOccurredAt(); at != nil {
		if age := s.cfg.Now().Sub(at.AsTime()); age > s.cfg.RequestMaxAge {
			return share.Errorf(share.ErrPrecondition, "the request is %s old, more than %s: it is not shared late", age.Round(1e9), s.cfg.RequestMaxAge)
		}
	}
	if *requestID == "" {
		*requestID = env.GetEventId()
	}
	return nil
}

// HandleShareRecordRequested is ShareRecord for a request that came
// through the bus. A refusal is recorded (ListShares shows it) and the
// message is done; only a dependency failure is returned, to retry.
func (s *Service) HandleShareRecordRequested(ctx context.Context, ev *sharingv1.ShareRecordRequested) error {
	req := ev.GetRequest()
	if req == nil {
		return bus.Permanent(errors.New("ShareRecordRequested without a request"))
	}
	if err := s.busRequest(ev.GetEnvelope(), req.GetOrgId(), &req.RequestId); err != nil {
		s.refused(ctx, share.Share{Org: ev.GetEnvelope().GetOrgId(), Kind: share.KindRecord, Team: req.GetTeamId(),
			What: strings.TrimSpace(req.GetModule() + " " + req.GetRecordId()), Sharer: person(req.GetSharer()),
			Via: share.ViaBus, SharedAt: s.now()}, err)
		return nil
	}
	_, err := s.ShareRecord(ctx, req, share.ViaBus, ev.GetEnvelope().GetEventId())
	return requestOutcome(err)
}

// HandleShareChartRequested is ShareChart for a request that came through
// the bus; see HandleShareRecordRequested.
func (s *Service) HandleShareChartRequested(ctx context.Context, ev *sharingv1.ShareChartRequested) error {
	req := ev.GetRequest()
	if req == nil {
		return bus.Permanent(errors.New("ShareChartRequested without a request"))
	}
	if err := s.busRequest(ev.GetEnvelope(), req.GetOrgId(), &req.RequestId); err != nil {
		s.refused(ctx, share.Share{Org: ev.GetEnvelope().GetOrgId(), Kind: share.KindChart, Team: req.GetTeamId(),
			What: req.GetReportName(), Sharer: person(req.GetSharer()), Via: share.ViaBus, SharedAt: s.now()}, err)
		return nil
	}
	_, err := s.ShareChart(ctx, req, share.ViaBus, ev.GetEnvelope().GetEventId())
	return requestOutcome(err)
}

// requestOutcome: refusals are final (and recorded), the rest is retried.
func requestOutcome(err error) error {
	if err == nil || share.IsRefusal(err) {
		return nil
	}
	return fmt.Errorf("sharing: %w", err)
}

// mine reports whether a delivery outcome is of a command this service
// sent, and returns its share.
func mine(origin, commandID string) (string, bool) {
	if origin != Producer && !strings.HasPrefix(origin, Producer+"/") {
		return "", false
	}
	return share.ShareOfCommand(commandID)
}

// HandleDeliverySucceeded records that one of a share's commands was
// carried out. Outcomes of other services' commands are ignored.
func (s *Service) HandleDeliverySucceeded(ctx context.Context, ev *integrationv1.DeliverySucceeded) error {
	id, ok := mine(ev.GetOrigin(), ev.GetCommandId())
	if !ok {
		return nil
	}
	return s.repo.AddOutcomes(ctx, share.Outcome{
		ID: ev.GetEnvelope().GetEventId(), ShareID: id, CommandID: ev.GetCommandId(), Delivered: true,
		Channel: ev.GetChannelId(), At: s.now(),
	})
}

// HandleDeliveryFailed records that one of a share's commands failed.
func (s *Service) HandleDeliveryFailed(ctx context.Context, ev *integrationv1.DeliveryFailed) error {
	id, ok := mine(ev.GetOrigin(), ev.GetCommandId())
	if !ok {
		return nil
	}
	reason := ev.GetReason()
	if reason == "" {
		reason = strings.ToLower(strings.TrimPrefix(ev.GetCode().String(), "DELIVERY_FAILURE_CODE_"))
	}
	return s.repo.AddOutcomes(ctx, share.Outcome{
		ID: ev.GetEnvelope().GetEventId(), ShareID: id, CommandID: ev.GetCommandId(), Reason: reason,
		Channel: ev.GetChannelId(), At: s.now(),
	})
}
