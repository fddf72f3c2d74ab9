package topology

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	integrationv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/integration/v1"
	sharingv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/sharing/v1"
	signalsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/signals/v1"
)

// SubjectFor returns the subject a CRM or integration event is published on,
// derived from its type and content, so every publisher (the CRM connector,
// crmctl, backfills) puts the same event on the same subject.
func SubjectFor(m proto.Message) (string, error) {
	e, ok := m.(interface{ GetEnvelope() *commonv1.Envelope })
	if !ok {
		return "", fmt.Errorf("%s carries no envelope", m.ProtoReflect().Descriptor().FullName())
	}
	org := e.GetEnvelope().GetOrgId()
	if _, err := Token(org); err != nil {
		return "", fmt.Errorf("envelope org id: %w", err)
	}
	module := func(mod string) (string, error) {
		if _, err := Token(mod); err != nil {
			return "", fmt.Errorf("module: %w", err)
		}
		return mod, nil
	}
	switch e := m.(type) {
	case *crmv1.RecordUpserted:
		mod, err := module(e.GetRecord().GetModule())
		if err != nil {
			return "", err
		}
		return RecordUpserted(org, mod), nil
	case *crmv1.RecordsImported:
		mod, err := module(e.GetSchema().GetModule())
		if err != nil {
			return "", err
		}
		return RecordsImported(org, mod), nil
	case *crmv1.RecordDeleted:
		mod, err := module(e.GetModule())
		if err != nil {
			return "", err
		}
		return RecordDeleted(org, mod), nil
	case *crmv1.WorkflowRuleTriggered:
		return WorkflowTriggered(org), nil
	case *crmv1.ActivityScheduled:
		return Activity(org, "scheduled"), nil
	case *crmv1.ActivityUpdated:
		return Activity(org, "updated"), nil
	case *crmv1.ActivityCancelled:
		return Activity(org, "cancelled"), nil
	case *crmv1.ActivityCompleted:
		return Activity(org, "completed"), nil
	case *crmv1.CompleteActivityRequested:
		return ActivityCommand(org, "complete"), nil
	case *crmv1.SalesSignal:
		if e.GetChannel() == crmv1.SignalChannel_SIGNAL_CHANNEL_UNSPECIFIED {
			return "", fmt.Errorf("sales signal %q has no channel", e.GetSignalId())
		}
		return SalesSignal(org, SignalChannelToken(e.GetChannel())), nil
	case *crmv1.CrmUserUpserted:
		return CrmUser(org, "upserted"), nil
	case *crmv1.CrmUserDeactivated:
		return CrmUser(org, "deactivated"), nil
	case *sharingv1.ShareRecordRequested:
		return ShareRequested(org, "record"), nil
	case *sharingv1.ShareChartRequested:
		return ShareRequested(org, "chart"), nil
	case *integrationv1.TeamInstalled:
		return Team(org, "installed"), nil
	case *integrationv1.TeamRemoved:
		return Team(org, "removed"), nil
	case *integrationv1.IntegrationEnabled:
		return Integration(org, "enabled"), nil
	case *integrationv1.IntegrationDisabled:
		return Integration(org, "disabled"), nil
	case *integrationv1.DeliverySucceeded:
		return Delivery(org, "succeeded"), nil
	case *integrationv1.DeliveryFailed:
		return Delivery(org, "failed"), nil
	case *signalsv1.SignalOwnerUnreachable:
		return SignalOwnerUnreachable(org), nil
	}
	return "", fmt.Errorf("no subject is defined for %s", m.ProtoReflect().Descriptor().FullName())
}

// SignalChannelToken is a signal channel as a subject token: "call",
// "support_ticket".
func SignalChannelToken(c crmv1.SignalChannel) string {
	return strings.ToLower(strings.TrimPrefix(c.String(), "SIGNAL_CHANNEL_"))
}
