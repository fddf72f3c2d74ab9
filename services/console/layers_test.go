package console_test

import (
	"testing"

	"github.com/crmslack/crmslack/libs/testkit"
)

// TestImportDirection keeps the layers apart: the session is plain code
// around the credential (no HTTP server, no NATS); the pages know the APIs
// only as their gRPC clients, never a service's internals.
func TestImportDirection(t *testing.T) {
	t.Parallel()
	others := []string{"github.com/nats-io/"}
	for _, s := range []string{"teams", "gateway", "delivery", "query", "sharing", "workflows", "signals", "reminders"} {
		others = append(others, "github.com/crmslack/crmslack/services/"+s)
	}
	testkit.CheckLayers(t,
		testkit.Layer{Dir: "internal/session", Forbid: []string{"github.com/nats-io/", "github.com/crmslack/crmslack/services/console/internal/web"}},
		testkit.Layer{Dir: "internal/web", Forbid: others},
	)
}
