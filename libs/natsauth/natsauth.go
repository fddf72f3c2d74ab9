// Package natsauth is who may do what on NATS: one user per service and
// one per CRM org, each with publish and subscribe permissions, written once
// here for the embedded server (libs/localnats) and mirrored by the
// production server configuration (deploy/nats/nats-server.conf).
//
// The walls it keeps: only delivery consumes SLACK_OUT (or reads its
// subjects); only teams writes the org_access bucket (every service may
// read it); a service's own buckets and streams are its alone; a CRM org's
// user publishes only crm.v1.<org>.> and hears only its own inbox.
//
// A service's user may otherwise use the bus (publish events, ensure the
// shared streams, consume its durables): the lists below are deny lists on
// top of ">" for services, and an allow list for the CRM. Narrowing the
// services to exact allow lists is future work (docs/security.md).
package natsauth

import (
	"fmt"
	"maps"
	"slices"

	"github.com/nats-io/nats-server/v2/server"
)

// Service users: the same names as their TLS identities (libs/rpc).
const (
	Teams     = "teams"
	Gateway   = "gateway"
	Delivery  = "delivery"
	Query     = "query"
	Sharing   = "sharing"
	Workflows = "workflows"
	Signals   = "signals"
	Reminders = "reminders"
)

// Services are the service users, in start order.
var Services = []string{Teams, Gateway, Delivery, Query, Sharing, Workflows, Signals, Reminders}

// private are the buckets (KV) and streams only their owner may touch.
var private = map[string]struct{ buckets, streams []string }{
	Gateway:   {buckets: []string{"gateway_oauth_nonces"}},
	Delivery:  {buckets: []string{"delivery_ledger", "delivery_partitions"}},
	Query:     {streams: []string{"QUERY_RECORDS", "QUERY_USERS"}},
	Workflows: {buckets: []string{"workflows"}},
	Signals:   {buckets: []string{"signals_settings", "signals_state"}},
	Reminders: {buckets: []string{"reminder_activities", "reminder_preferences", "reminder_people"}, streams: []string{"REMINDERS"}},
}

// Subjects of the walls.
const (
	orgAccessBucket = "org_access"
	slackOutStream  = "SLACK_OUT"
	slackOutSubject = "slack.out.>"
)

// CRMUser is the NATS user of a CRM org.
func CRMUser(org string) string { return "crm-" + org }

// CRMInbox is the inbox prefix a CRM org's client must use
// (nats.CustomInboxPrefix): its publish acks arrive there, and it may hear
// nothing else.
func CRMInbox(org string) string { return "_INBOX_crm_" + org }

// streamAccess are the JetStream API subjects that read or change stream s
// (a KV bucket is the stream KV_<bucket>).
func streamAccess(s string) []string {
	return []string{
		"$JS.API.STREAM.*." + s, // INFO, CREATE, UPDATE, DELETE, PURGE, MSG.GET...
		"$JS.API.STREAM.MSG.*." + s,
		"$JS.API.DIRECT.GET." + s, "$JS.API.DIRECT.GET." + s + ".>",
		"$JS.API.CONSUMER.*." + s, "$JS.API.CONSUMER.*." + s + ".>",
		"$JS.API.CONSUMER.*.*." + s + ".>",
		"$JS.ACK." + s + ".>",
	}
}

// consume are the subjects that read a stream's messages: consumers,
// direct and message gets (its info and creation stay open: every service
// ensures the shared streams).
func consume(s string) []string {
	return []string{
		"$JS.API.CONSUMER.CREATE." + s, "$JS.API.CONSUMER.CREATE." + s + ".>",
		"$JS.API.CONSUMER.DURABLE.CREATE." + s + ".>",
		"$JS.API.CONSUMER.MSG.NEXT." + s + ".>",
		"$JS.API.STREAM.MSG.GET." + s,
		"$JS.API.DIRECT.GET." + s, "$JS.API.DIRECT.GET." + s + ".>",
		"$JS.ACK." + s + ".>",
	}
}

// Permissions are a service user's permissions.
func Permissions(service string) (*server.Permissions, error) {
	if !slices.Contains(Services, service) {
		return nil, fmt.Errorf("natsauth: no NATS permissions for %q (add it to natsauth.Services)", service)
	}
	var pubDeny, subDeny []string
	for _, owner := range slices.Sorted(maps.Keys(private)) {
		p := private[owner]
		if owner == service {
			continue
		}
		for _, b := range p.buckets {
			pubDeny = append(pubDeny, append(streamAccess("KV_"+b), "$KV."+b+".>")...)
			subDeny = append(subDeny, "$KV."+b+".>")
		}
		for _, s := range p.streams {
			pubDeny = append(pubDeny, streamAccess(s)...)
		}
	}
	if service != Teams {
		// org_access is read by all (watchers, gets) but written by teams.
		pubDeny = append(pubDeny, "$KV."+orgAccessBucket+".>",
			"$JS.API.STREAM.UPDATE.KV_"+orgAccessBucket, "$JS.API.STREAM.DELETE.KV_"+orgAccessBucket,
			"$JS.API.STREAM.PURGE.KV_"+orgAccessBucket, "$JS.API.STREAM.MSG.DELETE.KV_"+orgAccessBucket)
	}
	if service != Delivery {
		pubDeny = append(pubDeny, consume(slackOutStream)...)
		subDeny = append(subDeny, slackOutSubject)
	}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{">"}, Deny: pubDeny},
		Subscribe: &server.SubjectPermission{Allow: []string{">"}, Deny: subDeny},
	}, nil
}

// CRMPermissions are a CRM org's: publish its own events, hear its acks.
func CRMPermissions(org string) *server.Permissions {
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{"crm.v1." + org + ".>"}},
		Subscribe: &server.SubjectPermission{Allow: []string{CRMInbox(org) + ".>"}},
	}
}

// Users are the server's users: every service and every CRM org, with the
// passwords given by user name (a missing one is an error naming it).
func Users(passwords map[string]string, crmOrgs []string) ([]*server.User, error) {
	var users []*server.User
	for _, s := range Services {
		p, err := Permissions(s)
		if err != nil {
			return nil, err
		}
		if passwords[s] == "" {
			return nil, fmt.Errorf("natsauth: no password for NATS user %s", s)
		}
		users = append(users, &server.User{Username: s, Password: passwords[s], Permissions: p})
	}
	for _, org := range crmOrgs {
		u := CRMUser(org)
		if passwords[u] == "" {
			return nil, fmt.Errorf("natsauth: no password for NATS user %s", u)
		}
		users = append(users, &server.User{Username: u, Password: passwords[u], Permissions: CRMPermissions(org)})
	}
	return users, nil
}
