package signals_test

import (
	"testing"

	"github.com/crmslack/crmslack/libs/testkit"
)

// TestImportDirection keeps the layers apart: the domain (matrix, burst) is
// plain Go over the contracts' types, rendering knows Block Kit only, and
// the app knows its ports, never the adapters (the buckets, the registry
// client) or the inbound ports (gRPC, NATS lanes).
func TestImportDirection(t *testing.T) {
	t.Parallel()
	const internal = "github.com/crmslack/crmslack/services/signals/internal/"
	adapters := []string{
		internal + "settingskv", internal + "statekv", internal + "owners", internal + "access",
		internal + "grpcapi", internal + "inbound", internal + "lanes",
	}
	drivers := []string{"go.mongodb.org/", "google.golang.org/grpc", "github.com/nats-io/"}
	testkit.CheckLayers(t,
		testkit.Layer{Dir: "internal/matrix", Plain: true, Allow: []string{"github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"}},
		testkit.Layer{Dir: "internal/burst", Plain: true},
		testkit.Layer{Dir: "internal/render", Forbid: append(append([]string{internal + "app"}, adapters...), drivers...)},
		testkit.Layer{Dir: "internal/app", Forbid: append(adapters, drivers...)},
	)
}
