package deliver

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCoreImportsNoAdapter: the core reaches Slack, the registry, the
// boundary and the ledger only through the ports it declares (ports.go).
func TestCoreImportsNoAdapter(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{
		"/internal/slackapi", "/internal/ledger", "/internal/tokens", "/internal/boundary", "/internal/audit",
		"/internal/outcome", "/internal/lanes", "/internal/partition",
		"github.com/nats-io/", "go.mongodb.org/", "github.com/slack-go/", "google.golang.org/grpc",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if strings.Contains(dep, f) {
				t.Errorf("the core depends on %s", dep)
			}
		}
	}
}
