package delivery_test

import (
	"testing"

	"github.com/crmslack/crmslack/libs/testkit"
)

// TestImportDirection keeps the layers apart: the core (deliver) reaches
// Slack, the registry, the boundary and the ledger only through the ports it
// declares (ports.go), never through their adapters, the inbound side or a
// driver; its helpers are plain Go.
func TestImportDirection(t *testing.T) {
	t.Parallel()
	const internal = "github.com/crmslack/crmslack/services/delivery/internal/"
	drivers := []string{"go.mongodb.org/", "google.golang.org/grpc", "github.com/nats-io/", "github.com/slack-go/", "net/http"}
	adapters := []string{
		internal + "slackapi", internal + "ledger", internal + "tokens", internal + "boundary", internal + "audit",
		internal + "outcome", internal + "lanes", internal + "partition",
	}
	testkit.CheckLayers(t,
		testkit.Layer{Dir: "internal/deliver", Forbid: append(adapters, drivers...)},
		testkit.Layer{Dir: "internal/pacing", Plain: true},
		testkit.Layer{Dir: "internal/targets", Plain: true, Allow: []string{"golang.org/x/sync/"}},
		testkit.Layer{Dir: "internal/blockcheck", Plain: true, Allow: []string{"github.com/crmslack/crmslack/libs/blockkit"}},
		testkit.Layer{Dir: "internal/command", Forbid: append(adapters, drivers...)},
		testkit.Layer{Dir: "internal/failure", Forbid: append(adapters, drivers...)},
	)
}
