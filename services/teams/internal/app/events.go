package app

import (
	"fmt"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	integrationv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/integration/v1"

	"github.com/crmslack/crmslack/services/teams/internal/pbconv"
	"github.com/crmslack/crmslack/services/teams/internal/registry"
)

// Producer names the registry in every envelope it writes.
const Producer = "teams"

// toProto builds the subject and message of a domain event.
func toProto(e registry.Event) (string, bus.Event, error) {
	org, err := topology.Token(e.OrgID)
	if err != nil {
		return "", nil, fmt.Errorf("event %s: %w", e.ID, err)
	}
	env := &commonv1.Envelope{EventId: e.ID, OrgId: org, OccurredAt: pbconv.Timestamp(e.At), SchemaVersion: 1, Producer: Producer}
	switch e.Kind {
	case registry.EventTeamInstalled:
		if e.Team == nil {
			return "", nil, fmt.Errorf("event %s: TeamInstalled without team", e.ID)
		}
		return topology.Team(org, "installed"), &integrationv1.TeamInstalled{
			Envelope: env, Team: pbconv.Team(*e.Team, e.By, e.At), Reinstall: e.Reinstall,
		}, nil
	case registry.EventTeamRemoved:
		return topology.Team(org, "removed"), &integrationv1.TeamRemoved{
			Envelope: env, TeamId: e.TeamID, Reason: pbconv.Reason(e.Reason), RemovedBy: pbconv.User(e.By),
		}, nil
	case registry.EventIntegrationDisabled:
		return topology.Integration(org, "disabled"), &integrationv1.IntegrationDisabled{Envelope: env, DisabledBy: pbconv.User(e.By)}, nil
	case registry.EventIntegrationEnabled:
		return topology.Integration(org, "enabled"), &integrationv1.IntegrationEnabled{Envelope: env, EnabledBy: pbconv.User(e.By)}, nil
	}
	return "", nil, fmt.Errorf("event %s: unknown kind %d", e.ID, e.Kind)
}
