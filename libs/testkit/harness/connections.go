package harness

import (
	"testing"

	"github.com/crmslack/crmslack/libs/devpki"
	"github.com/crmslack/crmslack/libs/service"
	"github.com/crmslack/crmslack/libs/testkit"
)

// Connections are service name's connections in a test: its trust files in
// pki, the bus at natsURL, its database (named name) at mongoURI unless that
// is empty, and its gRPC and ops listeners on port 0.
func Connections(t testing.TB, pki *devpki.Dir, name, natsURL, mongoURI string) service.Connections {
	t.Helper()
	c := service.Connections{
		Files: testkit.TrustFiles(t, pki, name), NATSURL: natsURL, NATSReplicas: 1,
		GRPCAddr: "127.0.0.1:0", OpsAddr: "127.0.0.1:0",
	}
	if mongoURI != "" {
		c.MongoURI, c.Database = mongoURI, name
	}
	return c
}
