package e2e

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/services/console"
)

// consoleOrg is the org the tests sign in to.
const consoleOrg = "acme-crm"

// apis are the gRPC addresses the console calls.
type apis struct {
	Teams, Workflows, Signals, Reminders, Delivery, Sharing string
}

// startConsole runs the console on the test's PKI, with the development
// sign-in for consoleOrg, calling the APIs at a.
func startConsole(t testing.TB, a apis) string {
	t.Helper()
	pki := testkit.PKI(t, consoleOrg)
	svcs := testkit.NewServices(t)
	addrs := testkit.Start(svcs, "console", func(ctx context.Context, ready func(console.Addrs)) error {
		return console.Run(ctx, console.Config{
			Files: testkit.TrustFiles(t, pki, "console"),
			Addr:  "127.0.0.1:0", OpsAddr: "127.0.0.1:0", PublicURL: "http://127.0.0.1:1",
			TeamsAddr: or(a.Teams), WorkflowsAddr: or(a.Workflows), SignalsAddr: or(a.Signals),
			RemindersAddr: or(a.Reminders), DeliveryAddr: or(a.Delivery), SharingAddr: or(a.Sharing),
			DevCRMKeys: consoleOrg + "=" + pki.CRMKeyFile(consoleOrg),
			Ready:      ready,
		}, testkit.Logger(t).With("svc", "console"), prometheus.NewRegistry())
	})
	return "http://" + addrs.HTTP
}

// or is an address nobody listens on for an API a test does not start.
func or(addr string) string {
	if addr == "" {
		return "127.0.0.1:1"
	}
	return addr
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so each answer can be checked.
type browser struct {
	t    testing.TB
	base string
	c    *http.Client
}

func newBrowser(t testing.TB, base string) *browser {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// answer is a response with its body read.
type answer struct {
	Code     int
	Location string
	Body     string
}

func (b *browser) do(req *http.Request) answer {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return answer{Code: resp.StatusCode, Location: resp.Header.Get("Location"), Body: string(body)}
}

func (b *browser) get(path string) answer {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.base+path, nil)
	return b.do(req)
}

// post sends a form as a same-origin browser does.
func (b *browser) post(path string, form url.Values) answer {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return b.do(req)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the CSRF token of the page at path.
func (b *browser) csrf(path string) string {
	b.t.Helper()
	a := b.get(path)
	m := csrfRE.FindStringSubmatch(a.Body)
	if m == nil {
		b.t.Fatalf("GET %s (%d): no CSRF token in the page:\n%s", path, a.Code, a.Body)
	}
	return m[1]
}

// signIn uses the development sign-in as email with role.
func (b *browser) signIn(email, role string) {
	b.t.Helper()
	a := b.post("/login/dev", url.Values{"csrf": {b.csrf("/login")}, "org": {consoleOrg}, "email": {email}, "name": {"Alice Johnson"}, "role": {role}})
	if a.Code != http.StatusSeeOther || a.Location != "/teams" {
		b.t.Fatalf("development sign-in: %d → %q, want 303 to /teams:\n%s", a.Code, a.Location, a.Body)
	}
}

// must fails the test unless the answer has code and every want.
func must(t testing.TB, what string, a answer, code int, want ...string) {
	t.Helper()
	if a.Code != code {
		t.Fatalf("%s: status %d, want %d (Location %q):\n%s", what, a.Code, code, a.Location, a.Body)
	}
	for _, w := range want {
		if !strings.Contains(a.Body, w) {
			t.Fatalf("%s: the page lacks %q:\n%s", what, w, a.Body)
		}
	}
}
