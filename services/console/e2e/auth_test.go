package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestLoginPageRenders: the sign-in page offers both sign-ins.
func TestLoginPageRenders(t *testing.T) {
	t.Parallel()
	b := newBrowser(t, startConsole(t, apis{}))
	must(t, "GET /login", b.get("/login"), http.StatusOK,
		`data-testid="login-credential"`, `data-testid="dev-login-form"`, `data-testid="dev-login-email"`, `<option value="acme-crm">`)
	if a := b.get("/teams"); a.Code != http.StatusSeeOther || !strings.HasPrefix(a.Location, "/login?") {
		t.Fatalf("GET /teams signed out: %d → %q, want a redirect to /login", a.Code, a.Location)
	}
	if a := b.post("/integration/disable", url.Values{}); a.Code != http.StatusUnauthorized {
		t.Fatalf("POST signed out: %d, want 401", a.Code)
	}
}
