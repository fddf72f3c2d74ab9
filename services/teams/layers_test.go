package teams_test

import (
	"testing"

	"github.com/crmslack/crmslack/libs/testkit"
)

// TestImportDirection keeps the layers apart: the domain (registry,
// sealing) is plain Go; the app knows its ports, never the adapters
// (Mongo, Slack, the org_access bucket) or the inbound ports (gRPC, NATS).
func TestImportDirection(t *testing.T) {
	t.Parallel()
	const internal = "github.com/crmslack/crmslack/services/teams/internal/"
	drivers := []string{"go.mongodb.org/", "google.golang.org/grpc", "github.com/nats-io/", "github.com/slack-go/"}
	testkit.CheckLayers(t,
		testkit.Layer{Dir: "internal/registry", Plain: true, Allow: []string{internal + "sealing"}},
		testkit.Layer{Dir: "internal/sealing", Plain: true},
		testkit.Layer{Dir: "internal/app", Forbid: append([]string{
			internal + "mongorepo", internal + "slackapi", internal + "accesskv", internal + "grpcapi", internal + "inbound",
		}, drivers...)},
	)
}
