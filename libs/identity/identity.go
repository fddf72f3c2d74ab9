// Package identity names the parts of crmslack that prove who they are: the
// services and the CRM's connector. One name is one identity everywhere: the
// URI SAN of its certificate (spiffe://crmslack/<name>, libs/mtls), its rows
// in the gRPC authorization table (libs/rpc) and its NATS user
// (libs/natsauth).
package identity

// The services, and the CRM.
const (
	Teams     = "teams"
	Gateway   = "gateway"
	Delivery  = "delivery"
	Query     = "query"
	Sharing   = "sharing"
	Workflows = "workflows"
	Signals   = "signals"
	Reminders = "reminders"
	// Console is the admin web console (services/console): it calls gRPC
	// only for the CRM user signed in, with their credential, and has no
	// NATS user.
	Console = "console"
	// CRM is the CRM's connector. Its gRPC calls must also carry a CRM
	// credential (libs/crmauth) for the org they concern; on NATS it logs in
	// as one user per org (natsauth.CRMUser).
	CRM = "crm"
	// NATS is the NATS servers' identity: a client connects only to a
	// server that proves it (libs/trust).
	NATS = "nats"
)

// Services are the services with a NATS user (libs/natsauth), in start
// order.
var Services = []string{Teams, Gateway, Delivery, Query, Sharing, Workflows, Signals, Reminders}

// NATSInbox is the inbox prefix of a NATS user's connections
// (nats.CustomInboxPrefix): each user may hear replies on its own inbox
// only (libs/natsauth), never on another's.
func NATSInbox(user string) string { return "_INBOX_" + user }
