package query_test

import (
	"testing"

	"github.com/crmslack/crmslack/libs/testkit"
)

// TestImportDirection keeps the layers apart: the domain (language,
// binding, projection, users, rendering) does no I/O and knows no port or
// adapter; the app knows the domain only; ports and adapters are leaves.
func TestImportDirection(t *testing.T) {
	t.Parallel()
	const internal = "github.com/crmslack/crmslack/services/query/internal/"
	io := []string{"github.com/nats-io/", "google.golang.org/grpc", "github.com/crmslack/crmslack/libs/bus", "github.com/crmslack/crmslack/libs/rpc"}
	outer := []string{internal + "app", internal + "grpcapi", internal + "late", internal + "feed", internal + "snapshot", internal + "teamsclient"}
	var layers []testkit.Layer
	for _, pkg := range []string{"slash", "filter", "projection", "crmusers", "render", "seedset"} {
		layers = append(layers, testkit.Layer{Dir: "internal/" + pkg, Forbid: append(append([]string{}, io...), outer...)})
	}
	layers = append(layers, testkit.Layer{Dir: "internal/app", Forbid: append(append([]string{}, io...), outer[1:]...)})
	testkit.CheckLayers(t, layers...)
}
