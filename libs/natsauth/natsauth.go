// Package natsauth is who may do what on NATS: one user per service and
// one per CRM org, each with exact publish and subscribe allow lists, written
// once here for the embedded server (libs/localnats) and the production
// server configuration (deploy/nats/nats-server.conf).
//
// A service's lists are made from its [Needs] (needs.go): the streams it
// ensures, the durable consumers it runs, the buckets it writes or only
// reads, the subjects it publishes and the few it subscribes to. Everything
// else is refused by the server, so the walls hold by construction: only
// delivery consumes SLACK_OUT, only teams writes org_access, a service's own
// buckets and streams are its alone, a CRM org's user publishes only
// crm.v1.<org>.> and hears only its own inbox.
package natsauth

import (
	"fmt"
	"slices"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/crmslack/crmslack/libs/identity"
)

// Services are the service users, in start order: the same names as their
// TLS identities.
var Services = identity.Services

// CRMUser is the NATS user of a CRM org.
func CRMUser(org string) string { return "crm-" + org }

// CRMInbox is the inbox prefix a CRM org's client must use
// (nats.CustomInboxPrefix): its publish acks arrive there, and it may hear
// nothing else.
func CRMInbox(org string) string { return identity.NATSInbox(CRMUser(org)) }

// Permissions are a service user's permissions: exactly what its Needs say.
func Permissions(service string) (*server.Permissions, error) {
	n, ok := Table[service]
	if !ok || !slices.Contains(Services, service) {
		return nil, fmt.Errorf("natsauth: no NATS permissions for %q (add it to natsauth.Table and identity.Services)", service)
	}
	pub, sub := n.Allow()
	sub = append(sub, identity.NATSInbox(service)+".>")
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Allow: sub},
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
