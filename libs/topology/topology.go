// Package topology names every JetStream stream, subject and durable consumer
// of crmslack in one place, so services agree on them by construction.
//
// The convention (docs/conventions.md):
//
//	<area>.<version>.<scope...>.<event>
//
//	crm.v1.<org>.record.upserted.<module>   events the CRM emits      stream CRM
//	integration.v1.<org>.team.installed     what the product decides  stream INTEGRATION
//	slack.in.v1.<team>.command              verified Slack requests   stream SLACK_IN
//	slack.out.v1.<org>.<team>.post          commands for the egress   stream SLACK_OUT
//	                                        (stored as ….post.<partition>)
//
// Dead letters (dlq.<stream>.<durable>, stream DLQ) are named and kept by
// libs/bus, which every consumer goes through.
//
// Ids become subject tokens only through Token, which refuses anything that
// would change a subject's shape.
package topology

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream names.
const (
	StreamCRM         = "CRM"
	StreamIntegration = "INTEGRATION"
	StreamSlackIn     = "SLACK_IN"
	StreamSlackOut    = "SLACK_OUT"
)

// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id. Slack
// retries an event up to three times over about five minutes and a CRM may
// republish after a timeout; twice that keeps every retry inside the window.
const DuplicateWindow = 15 * time.Minute

// ErrBadToken reports an id that cannot be a subject token.
var ErrBadToken = errors.New("not usable as a subject token")

// Token checks that s can stand as one subject token: valid UTF-8, not
// empty, no dots, wildcards, white space or control characters. Ids from
// outside (org ids, team ids, module names) pass through it before they
// become part of a subject.
func Token(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("empty id: %w", ErrBadToken)
	}
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("id %q is not valid UTF-8: %w", s, ErrBadToken)
	}
	for _, r := range s {
		if r == '.' || r == '*' || r == '>' || unicode.IsSpace(r) || unicode.IsControl(r) {
			return "", fmt.Errorf("id %q contains %q: %w", s, r, ErrBadToken)
		}
	}
	return s, nil
}

// StreamOptions are the deployment-dependent parts of every stream.
type StreamOptions struct {
	// Replicas is 1 on a single server and 3 on a production cluster.
	Replicas int
	// Storage is file storage unless a test asks for memory.
	Storage jetstream.StorageType
	// SlackOutPartitions is the partition count of SLACK_OUT's transform;
	// 0 means SlackOutPartitions. Only the delivery service sets it (from
	// DELIVERY_PARTITIONS), during the migration that changes the count.
	SlackOutPartitions int
}

// SlackOutPartitions is how many partitions the commands for the Slack
// egress are spread over, by org and team: up to this many delivery replicas
// share the work while each team's commands keep their order. Changing it
// moves teams between partitions: a migration (docs/configuration.md).
const SlackOutPartitions = 8

// SlackOutTransform is SLACK_OUT's subject transform for p partitions: the
// stream stores slack.out.v1.<org>.<team>.<kind> as
// slack.out.v1.<org>.<team>.<kind>.<k>, k = {{partition(p,1,2)}} (FNV-1a of
// the org and team tokens, modulo p). Publishers use SlackOut unchanged.
func SlackOutTransform(p int) *jetstream.SubjectTransformConfig {
	return &jetstream.SubjectTransformConfig{
		Source:      "slack.out.v1.*.*.*",
		Destination: "slack.out.v1.{{wildcard(1)}}.{{wildcard(2)}}.{{wildcard(3)}}.{{partition(" + strconv.Itoa(p) + ",1,2)}}",
	}
}

// SlackOutPartition is the filter of partition k's commands.
func SlackOutPartition(k int) string { return "slack.out.v1.*.*.*." + strconv.Itoa(k) }

// Streams returns the configuration of every stream, reconciled at start-up
// by each service that publishes or consumes.
func Streams(o StreamOptions) []jetstream.StreamConfig {
	if o.Replicas < 1 {
		o.Replicas = 1
	}
	if o.SlackOutPartitions < 1 {
		o.SlackOutPartitions = SlackOutPartitions
	}
	stream := func(name, subject, desc string, maxAge time.Duration) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:        name,
			Description: desc,
			Subjects:    []string{subject},
			Retention:   jetstream.LimitsPolicy,
			Storage:     o.Storage,
			Replicas:    o.Replicas,
			Duplicates:  DuplicateWindow,
			MaxAge:      maxAge,
			Discard:     jetstream.DiscardOld,
		}
	}
	slackOut := stream(StreamSlackOut, "slack.out.v1.>", "Commands for the Slack egress, partitioned by org and team", 3*24*time.Hour)
	// Each command gets a partition token, so that delivery replicas can
	// share the work and keep each team's order.
	slackOut.SubjectTransform = SlackOutTransform(o.SlackOutPartitions)
	return []jetstream.StreamConfig{
		// A week of CRM events lets a consumer that was down for days catch up.
		stream(StreamCRM, "crm.v1.>", "Events the CRM emits", 7*24*time.Hour),
		stream(StreamIntegration, "integration.v1.>", "Team, integration and delivery events", 30*24*time.Hour),
		// Slack requests are worth nothing after a day: response_urls expire
		// in 30 minutes and Slack gives up on events within minutes.
		stream(StreamSlackIn, "slack.in.v1.>", "Verified requests from Slack", 24*time.Hour),
		slackOut,
	}
}

// CRM event subjects.

// RecordUpserted is the subject of a record created or changed in a module.
func RecordUpserted(org, module string) string { return "crm.v1." + org + ".record.upserted." + module }

// RecordsImported is the subject of a batch of records of a module
// backfilled from a CRM export (crmctl import).
func RecordsImported(org, module string) string {
	return "crm.v1." + org + ".record.imported." + module
}

// RecordDeleted is the subject of a record deleted from a module.
func RecordDeleted(org, module string) string { return "crm.v1." + org + ".record.deleted." + module }

// WorkflowTriggered is the subject of a workflow rule that fired.
func WorkflowTriggered(org string) string { return "crm.v1." + org + ".workflow.triggered" }

// Activity is the subject of an activity change; change is one of
// scheduled, updated, cancelled, completed.
func Activity(org, change string) string { return "crm.v1." + org + ".activity." + change }

// SalesSignal is the subject of a sales signal of one channel ("call").
func SalesSignal(org, channel string) string { return "crm.v1." + org + ".signal." + channel }

// CrmUser is the subject of a CRM user change; change is upserted or
// deactivated.
func CrmUser(org, change string) string { return "crm.v1." + org + ".user." + change }

// ShareRequested is the subject of a share the CRM asks for through the bus
// instead of gRPC; kind is record or chart.
func ShareRequested(org, kind string) string { return "crm.v1." + org + ".share." + kind }

// Integration event subjects.

// Team is the subject of a team change; change is installed or removed.
func Team(org, change string) string { return "integration.v1." + org + ".team." + change }

// Integration is the subject of an org's integration switch; change is
// enabled or disabled.
func Integration(org, change string) string {
	return "integration.v1." + org + ".integration." + change
}

// Delivery is the subject of a delivery outcome; outcome is succeeded or
// failed.
func Delivery(org, outcome string) string { return "integration.v1." + org + ".delivery." + outcome }

// Inbound Slack subjects, by team: the gateway does not know the org.

// SlackCommand is the subject of a verified slash command.
func SlackCommand(team string) string { return "slack.in.v1." + team + ".command" }

// SlackInteraction is the subject of a verified interaction payload.
func SlackInteraction(team string) string { return "slack.in.v1." + team + ".interaction" }

// SlackEvent is the subject of a verified Events API callback of one type.
func SlackEvent(team, eventType string) string { return "slack.in.v1." + team + ".event." + eventType }

// SlackOut is the subject of a command for the Slack egress; kind is one of
// post, update, ephemeral, respond, upload.
func SlackOut(org, team, kind string) string { return "slack.out.v1." + org + "." + team + "." + kind }

// BucketOrgAccess is the JetStream key-value bucket the team registry keeps
// each org's teams.v1.OrgAccess in, keyed by org id.
const BucketOrgAccess = "org_access"

// Select returns the configuration of the named streams, in the order named;
// a service ensures only the streams it publishes to or consumes. It panics
// on a name topology does not declare: that is a programming error.
func Select(o StreamOptions, names ...string) []jetstream.StreamConfig {
	all := Streams(o)
	out := make([]jetstream.StreamConfig, 0, len(names))
	for _, name := range names {
		i := slices.IndexFunc(all, func(c jetstream.StreamConfig) bool { return c.Name == name })
		if i < 0 {
			panic("libs/topology declares no stream " + name)
		}
		out = append(out, all[i])
	}
	return out
}
