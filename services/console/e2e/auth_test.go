package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/crmauth"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/services/console/internal/session"
)

// TestLoginPageRenders: the sign-in page offers both sign-ins.
func TestLoginPageRenders(t *testing.T) {
	t.Parallel()
	b := newBrowser(t, startConsole(t, apis{}))
	must(t, "GET /login", b.get("/login"), http.StatusOK,
		`data-testid="login-credential"`, `data-testid="dev-login-form"`, `data-testid="dev-login-email"`, `<option value="acme-crm">`)
}

// TestCredentialRefused: a console request without a valid CRM credential
// is refused: a page is sent to the sign-in page, anything else gets 401,
// and a refused credential's cookie is cleared.
func TestCredentialRefused(t *testing.T) {
	t.Parallel()
	base := startConsole(t, apis{})
	pki := testkit.PKI(t, consoleOrg, "other-org")
	key, err := crmauth.ReadPrivateKey(pki.CRMKeyFile(consoleOrg))
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := crmauth.ReadPrivateKey(pki.CRMKeyFile("other-org"))
	if err != nil {
		t.Fatal(err)
	}
	_, forger, _ := ed25519.GenerateKey(rand.Reader)
	sign := func(k ed25519.PrivateKey, org string, at time.Time) string {
		c := crmauth.Claims{Org: org, Email: aliceEmail, Role: crmauth.RoleAdmin}
		c.Subject = "crm-alice"
		tok, err := crmauth.Sign(k, c, at, 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	cases := []struct {
		name, cookie string
	}{
		{"none", ""},
		{"garbage", "not-a-jwt"},
		{"forged (a key not in the registry)", sign(forger, consoleOrg, time.Now())},
		{"expired", sign(key, consoleOrg, time.Now().Add(-time.Hour))},
		{"another org's key claiming this org", sign(otherKey, consoleOrg, time.Now())},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := newBrowser(t, base)
			if c.cookie != "" {
				u, _ := url.Parse(base)
				b.c.Jar.SetCookies(u, []*http.Cookie{{Name: session.CookieName, Value: c.cookie, Path: "/"}})
			}
			for _, path := range []string{"/teams", "/workflows", "/workflows/new", "/signals", "/reminders", "/deliveries", "/workflows/fields?module=Deals"} {
				a := b.get(path)
				if a.Code != http.StatusSeeOther || !strings.HasPrefix(a.Location, "/login?") {
					t.Errorf("GET %s: %d → %q, want a redirect to /login", path, a.Code, a.Location)
				}
			}
			for _, path := range []string{"/integration/disable", "/teams/install", "/workflows", "/signals", "/reminders", "/logout"} {
				if a := b.post(path, url.Values{"csrf": {"x"}}); a.Code != http.StatusUnauthorized {
					t.Errorf("POST %s: %d, want 401", path, a.Code)
				}
			}
			// The sign-in form refuses it the same way.
			a := b.post("/login", url.Values{"csrf": {b.csrf("/login")}, "credential": {c.cookie}})
			must(t, "POST /login", a, http.StatusUnauthorized, `data-testid="error"`)
		})
	}
}

// TestSessionRules: a credential the CRM signed starts a session in an
// HttpOnly, SameSite=Strict cookie; a form without the session's CSRF
// token, or from another site, is refused; the development sign-in signs
// only for a configured org.
func TestSessionRules(t *testing.T) {
	t.Parallel()
	base := startConsole(t, apis{})
	pki := testkit.PKI(t, consoleOrg, "other-org")
	b := newBrowser(t, base)

	tok := testkit.CRMToken(t, pki, consoleOrg, aliceEmail, crmauth.RoleAdmin)
	req, _ := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(url.Values{"csrf": {b.csrf("/login")}, "credential": {tok}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in with the CRM's credential: %d", resp.StatusCode)
	}
	var sc *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == session.CookieName {
			sc = c
		}
	}
	if sc == nil || !sc.HttpOnly || sc.SameSite != http.SameSiteStrictMode || sc.Value != tok {
		t.Fatalf("session cookie %+v, want the credential, HttpOnly, SameSite=Strict", sc)
	}
	// Signed in: the page is served (its API is down here, which it says).
	must(t, "GET /teams signed in", b.get("/teams"), http.StatusServiceUnavailable, `data-testid="session-user">`+aliceEmail, "Service indisponible")

	cases := []struct {
		name   string
		csrf   string
		site   string
		status int
	}{
		{"no CSRF token", "", "same-origin", http.StatusForbidden},
		{"a wrong CSRF token", "forged", "same-origin", http.StatusForbidden},
		{"from another site, with the token", csrfOf(t, b), "cross-site", http.StatusForbidden},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(http.MethodPost, base+"/integration/disable", strings.NewReader(url.Values{"csrf": {c.csrf}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", c.site)
		if a := b.do(req); a.Code != c.status {
			t.Errorf("%s: %d, want %d", c.name, a.Code, c.status)
		}
	}

	d := newBrowser(t, base)
	a := d.post("/login/dev", url.Values{"csrf": {d.csrf("/login")}, "org": {"other-org"}, "email": {aliceEmail}, "role": {"admin"}})
	must(t, "development sign-in for an org without a configured key", a, http.StatusBadRequest, "no development key")
	a = d.post("/login/dev", url.Values{"csrf": {"stale"}, "org": {consoleOrg}, "email": {aliceEmail}, "role": {"admin"}})
	must(t, "development sign-in without the form's token", a, http.StatusForbidden)

	// Signing out ends the session.
	a = b.post("/logout", url.Values{"csrf": {csrfOf(t, b)}})
	if a.Code != http.StatusSeeOther {
		t.Fatalf("logout: %d", a.Code)
	}
	if a := b.get("/teams"); a.Code != http.StatusSeeOther {
		t.Fatalf("after logout, GET /teams: %d, want a redirect to /login", a.Code)
	}
}

// csrfOf is the session's CSRF token, from any page of the session.
func csrfOf(t *testing.T, b *browser) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(b.get("/teams").Body)
	if m == nil {
		t.Fatal("no CSRF token on /teams")
	}
	return m[1]
}
