package cluster

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/crmslack/crmslack/libs/identity"
)

// service is one service of the cluster, as its deployment declares it:
// the variables of its listeners, whether it has a database, and the
// secrets it is given (only those it reads).
type service struct {
	name string
	// listen is the variable of its API listener (gRPC, or the gateway's
	// Slack HTTP endpoints); the balancer in front of the replicas is the
	// service's address.
	listen, ops string
	mongo       bool
	secrets     []string
}

// services in start order: teams first, it makes the org_access bucket the
// others watch.
var services = []service{
	{name: identity.Teams, listen: "TEAMS_GRPC_ADDR", ops: "TEAMS_OPS_ADDR", mongo: true, secrets: []string{secClient, secInstall, secTokenKeys}},
	{name: identity.Gateway, listen: "GATEWAY_ADDR", ops: "GATEWAY_OPS_ADDR", secrets: []string{secSigning, secClient, secGatewayState, secInstall}},
	{name: identity.Delivery, listen: "DELIVERY_GRPC_ADDR", ops: "DELIVERY_OPS_ADDR", mongo: true},
	{name: identity.Query, listen: "QUERY_GRPC_ADDR", ops: "QUERY_OPS_ADDR", secrets: []string{secShareButton}},
	{name: identity.Sharing, listen: "SHARING_GRPC_ADDR", ops: "SHARING_OPS_ADDR", mongo: true, secrets: []string{secShareButton}},
	{name: identity.Workflows, listen: "WORKFLOWS_GRPC_ADDR", ops: "WORKFLOWS_OPS_ADDR", mongo: true},
	{name: identity.Signals, listen: "SIGNALS_GRPC_ADDR", ops: "SIGNALS_OPS_ADDR"},
	{name: identity.Reminders, listen: "REMINDERS_GRPC_ADDR", ops: "REMINDERS_OPS_ADDR", mongo: true, secrets: []string{secReminders}},
	// The admin console: browsers' HTTP; it calls the others' gRPC.
	{name: "console", listen: "CONSOLE_ADDR", ops: "CONSOLE_OPS_ADDR"},
}

// mongoURI is a service's MongoDB URI: FerretDB over TLS with the
// service's own certificate, and the database login.
func mongoURI(addr, password, caFile, certFile, keyFile string) string {
	q := url.Values{
		"authMechanism":      {"PLAIN"}, // FerretDB v1 hands the login to PostgreSQL
		"tls":                {"true"},
		"tlsCAFile":          {caFile},
		"tlsCertificateFile": {certFile},
		"tlsPrivateKeyFile":  {keyFile},
	}
	return fmt.Sprintf("mongodb://%s:%s@%s/?%s", pgUser, url.QueryEscape(password), addr, q.Encode())
}

func natsURLs(nodes []natsNode) string {
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = "nats://" + n.client
	}
	return strings.Join(urls, ",")
}
