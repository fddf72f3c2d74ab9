package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/testkit"
)

// testDeliveries runs after testWorkflows, whose firing posted to #sales.
func testDeliveries(t *testing.T, s *stack, b *browser) {
	testkit.Eventually(t, 30*time.Second, func() bool {
		p := b.get("/deliveries")
		return p.Code == http.StatusOK && strings.Contains(p.Body, `data-testid="delivery-status">Publié`) && strings.Contains(p.Body, acmeSales)
	}, "the audit never showed the workflow's post")
	must(t, "failed only", b.get("/deliveries?status=failed"), http.StatusOK, `data-testid="deliveries-empty"`, `<option value="failed" selected>`)
}
