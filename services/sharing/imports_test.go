package sharing

import (
	"testing"

	"github.com/crmslack/crmslack/libs/testkit"
)

// TestImportDirection keeps the layers apart: the domain (internal/share)
// is plain Go, and the app layer (internal/app) knows its ports, never the
// adapters that implement them or their drivers.
func TestImportDirection(t *testing.T) {
	t.Parallel()
	const internal = "github.com/crmslack/crmslack/services/sharing/internal/"
	testkit.CheckLayers(t,
		testkit.Layer{Dir: "internal/share", Plain: true},
		testkit.Layer{Dir: "internal/app", Forbid: []string{
			internal + "mongorepo", internal + "remote", internal + "grpcapi", internal + "inbound", internal + "access",
			"go.mongodb.org/", "google.golang.org/grpc", "github.com/nats-io/",
		}},
	)
}
