package reminders_test

import (
	"testing"

	"github.com/crmslack/crmslack/libs/testkit"
)

// TestImportDirection keeps the layers apart: the domain (remind) and the
// rendering are plain Go on the contracts' types; the app knows its ports,
// never the adapters (the timers' stream, the buckets, MongoDB) or the
// inbound ports (gRPC, NATS).
func TestImportDirection(t *testing.T) {
	t.Parallel()
	const internal = "github.com/crmslack/crmslack/services/reminders/internal/"
	// The contracts' generated types and the pure helpers (subject tokens,
	// Block Kit limits, links) are the domain's vocabulary.
	vocabulary := []string{
		"github.com/crmslack/crmslack/proto/gen/go/", "google.golang.org/protobuf/",
		"github.com/crmslack/crmslack/libs/topology", "github.com/crmslack/crmslack/libs/blockkit",
		"github.com/crmslack/crmslack/libs/signed",
	}
	drivers := []string{"go.mongodb.org/", "google.golang.org/grpc", "github.com/nats-io/", "github.com/slack-go/"}
	adapters := []string{internal + "timers", internal + "activitykv", internal + "prefs", internal + "access", internal + "grpcapi", internal + "inbound"}
	testkit.CheckLayers(t,
		testkit.Layer{Dir: "internal/remind", Plain: true, Allow: vocabulary},
		testkit.Layer{Dir: "internal/render", Forbid: append(append([]string{internal + "app"}, adapters...), "go.mongodb.org/", "google.golang.org/grpc", "github.com/nats-io/")},
		testkit.Layer{Dir: "internal/app", Forbid: append(adapters, drivers...)},
	)
}
