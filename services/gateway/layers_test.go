package gateway_test

import (
	"testing"

	"github.com/crmslack/crmslack/libs/testkit"
)

// TestImportDirection keeps the layers apart: signature verification and
// the OAuth state are plain code; the Slack HTTP port publishes through a
// port of its own and knows neither NATS nor gRPC; the team directory is a
// read model fed from outside.
func TestImportDirection(t *testing.T) {
	t.Parallel()
	const internal = "github.com/crmslack/crmslack/services/gateway/internal/"
	drivers := []string{"google.golang.org/grpc", "github.com/nats-io/"}
	testkit.CheckLayers(t,
		testkit.Layer{Dir: "internal/verify", Plain: true},
		testkit.Layer{Dir: "internal/oauthstate", Forbid: drivers},
		testkit.Layer{Dir: "internal/teamdir", Forbid: append([]string{"github.com/crmslack/crmslack/libs/bus"}, drivers...)},
		testkit.Layer{Dir: "internal/slackhttp", Forbid: append([]string{internal + "install", internal + "queryanswer"}, drivers...)},
	)
}
