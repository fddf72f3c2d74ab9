package natsauth

import (
	"github.com/crmslack/crmslack/libs/identity"
	"github.com/crmslack/crmslack/libs/topology"
)

// Names of the services' own buckets, streams and durable consumers that
// libs/topology does not declare (they live in the services' internal
// packages). A rename there without one here fails that service's e2e
// tests: its server refuses the new name.
const (
	gatewayNonces      = "gateway_oauth_nonces" // services/gateway/internal/install
	deliveryLedger     = "delivery_ledger"      // services/delivery/internal/ledger
	deliveryPartitions = "delivery_partitions"  // services/delivery/internal/partition
	queryRecords       = "QUERY_RECORDS"        // services/query/internal/snapshot
	queryUsers         = "QUERY_USERS"
)

// slackOut is a command to the Slack egress of kind (post, update,
// ephemeral, respond, upload), for any org and team.
func slackOut(kind string) string { return topology.SlackOut("*", "*", kind) }

// Table is each service's Needs: the one source of its allow lists. A new
// service adds its row (and its name to identity.Services).
var Table = map[string]Needs{
	identity.Teams: {
		Ensures:   []string{topology.StreamIntegration, topology.StreamSlackIn},
		Consumes:  map[string][]string{topology.StreamSlackIn: {"teams-slack-events"}},
		Owns:      []string{topology.BucketOrgAccess},
		Publishes: []string{topology.Team("*", "*"), topology.Integration("*", "*")},
	},
	identity.Gateway: {
		Ensures:   []string{topology.StreamSlackIn},
		Owns:      []string{gatewayNonces},
		Watches:   []string{topology.BucketOrgAccess},
		Publishes: []string{topology.SlackCommand("*"), topology.SlackInteraction("*"), topology.SlackEvent("*", "*")},
		// The follow-up of a slow command listens for its delivery.
		Subscribes: []string{topology.Delivery("*", "succeeded")},
	},
	identity.Delivery: {
		Ensures: []string{topology.StreamIntegration, topology.StreamSlackOut},
		Consumes: map[string][]string{
			topology.StreamSlackOut:    {"*"},
			topology.StreamIntegration: {"delivery-audit-succeeded", "delivery-audit-failed"},
		},
		// Layouts it migrates from: one commands durable before the
		// partitions, audit durables before the settler wrote the rows.
		Deletes: map[string][]string{
			topology.StreamSlackOut:    {"delivery-commands"},
			topology.StreamIntegration: {"delivery-audit-succeeded", "delivery-audit-failed"},
		},
		Rewinds:    map[string][]string{topology.StreamSlackOut: {"*"}},
		Gets:       []string{deadLetterStream},
		Removes:    []string{deadLetterStream},
		Owns:       []string{deliveryLedger, deliveryPartitions},
		Watches:    []string{topology.BucketOrgAccess},
		Advisories: []string{topology.StreamSlackOut},
		// Outcomes, and the commands the mover re-publishes into their
		// partition (the partition token appended) and dead letters
		// replayed on their subject.
		Publishes: []string{topology.Delivery("*", "*"), topology.SlackOut("*", "*", "*"), topology.SlackOut("*", "*", "*") + ".*"},
	},
	identity.Query: {
		Ensures: []string{topology.StreamCRM, topology.StreamSlackIn, topology.StreamSlackOut, queryRecords, queryUsers},
		Consumes: map[string][]string{
			topology.StreamCRM:     {"query-records-upserted", "query-records-deleted", "query-records-imported", "query-users-upserted", "query-users-deactivated"},
			topology.StreamSlackIn: {"query-commands"},
		},
		Reads:     []string{queryRecords, queryUsers},
		Watches:   []string{topology.BucketOrgAccess},
		Publishes: []string{"query.records.>", "query.users.>", slackOut("respond")},
	},
	identity.Sharing: {
		Ensures: []string{topology.StreamCRM, topology.StreamSlackIn, topology.StreamSlackOut, topology.StreamIntegration},
		Consumes: map[string][]string{
			topology.StreamCRM:         {"sharing-record-requests", "sharing-chart-requests"},
			topology.StreamSlackIn:     {"sharing-interactions"},
			topology.StreamIntegration: {"sharing-delivery-succeeded", "sharing-delivery-failed"},
		},
		Watches:   []string{topology.BucketOrgAccess},
		Publishes: []string{slackOut("post"), slackOut("upload"), slackOut("respond")},
	},
	identity.Workflows: {
		Ensures: []string{topology.StreamCRM, topology.StreamIntegration, topology.StreamSlackOut},
		Consumes: map[string][]string{
			topology.StreamCRM:         {"workflows-triggers", "workflows-schemas", "workflows-schemas-imported"},
			topology.StreamIntegration: {"workflows-team-removed", "workflows-delivery-succeeded", "workflows-delivery-failed"},
		},
		Owns:    []string{topology.BucketWorkflows},
		Watches: []string{topology.BucketOrgAccess},
		Publishes: []string{slackOut("post"),
			topology.WorkflowActionsRemoved("*"), topology.WorkflowTargetsFlagged("*")},
	},
	identity.Signals: {
		Ensures: []string{topology.StreamCRM, topology.StreamSlackOut, topology.StreamIntegration},
		Consumes: map[string][]string{
			topology.StreamCRM:         {topology.DurableSignals},
			topology.StreamIntegration: {topology.DurableSignalsDelivered, topology.DurableSignalsFailed},
		},
		Owns:      []string{topology.BucketSignalsSettings, topology.BucketSignalsState},
		Watches:   []string{topology.BucketOrgAccess},
		Publishes: []string{slackOut("post"), slackOut("update"), topology.SignalOwnerUnreachable("*")},
	},
	identity.Reminders: {
		Ensures: []string{topology.StreamCRM, topology.StreamSlackIn, topology.StreamSlackOut, topology.StreamReminders},
		Consumes: map[string][]string{
			topology.StreamCRM: {"reminders-activity-scheduled", "reminders-activity-updated",
				"reminders-activity-cancelled", "reminders-activity-completed"},
			topology.StreamReminders: {"reminders-due"},
			topology.StreamSlackIn:   {"reminders-interactions"},
		},
		Owns:    []string{topology.BucketReminderActivities, topology.BucketReminderPreferences, topology.BucketReminderPeople},
		Watches: []string{topology.BucketOrgAccess},
		Purges:  []string{topology.StreamReminders},
		Publishes: []string{slackOut("post"), slackOut("respond"),
			topology.ActivityCommand("*", "complete"), topology.ReminderTimer("*", "*", "*", "*")},
	},
}
