package workflows_test

import (
	"testing"

	"github.com/crmslack/crmslack/libs/testkit"
)

// TestImportDirection keeps the layers apart: the domain (action,
// template, valuefmt, compose, readmodel) is plain Go or pure libraries;
// the app knows its ports, never the adapters or the inbound ports.
func TestImportDirection(t *testing.T) {
	t.Parallel()
	const internal = "github.com/crmslack/crmslack/services/workflows/internal/"
	drivers := []string{"go.mongodb.org/", "google.golang.org/grpc", "github.com/nats-io/"}
	adapters := []string{internal + "kvstore", internal + "history", internal + "remote", internal + "access", internal + "grpcapi", internal + "inbound"}
	plain := []string{internal + "template", internal + "valuefmt", "github.com/crmslack/crmslack/libs/fieldmatch", "github.com/crmslack/crmslack/proto/"}
	testkit.CheckLayers(t,
		testkit.Layer{Dir: "internal/action", Plain: true, Allow: plain},
		testkit.Layer{Dir: "internal/valuefmt", Plain: true, Allow: plain},
		testkit.Layer{Dir: "internal/template", Plain: true, Allow: plain},
		testkit.Layer{Dir: "internal/compose", Forbid: append(drivers, adapters...)},
		testkit.Layer{Dir: "internal/readmodel", Forbid: append(drivers, adapters...)},
		testkit.Layer{Dir: "internal/app", Forbid: append(drivers, adapters...)},
	)
}
