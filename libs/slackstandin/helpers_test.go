package slackstandin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

// Ids from seed.json.
const (
	acme        = "T0ACME0001"
	acmeBot     = "U0ACMEBOT1"
	alice       = "U0ACME0ALC"
	bob         = "U0ACME0BOB"
	carol       = "U0ACME0CAR"
	dan         = "U0ACME0DAN"
	eve         = "U0ACME0EVE"
	frank       = "U0ACME0FRK" // deleted
	general     = "C0ACMEGNRL"
	sales       = "C0ACMESALE" // holds bob's message 1700000000.000100
	random      = "C0ACMERAND" // public, bot not a member
	dealDesk    = "G0ACMEDEAL" // private, bot a member
	exec        = "G0ACMEEXEC" // private, bot not a member
	oldPipeline = "C0ACMEOLDP" // archived, bot a member
	globex      = "T0GLBX0001"
	globexGnrl  = "C0GLBXGNRL"
	ivy         = "U0GLBX0IVY"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// startServer starts a stand-in closed at the end of the test.
func startServer(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	srv, err := New(cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	if err := srv.Start(""); err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(srv.Close)
	return srv
}

// startQuiet starts a stand-in with rate limits off and a fake clock.
func startQuiet(tb testing.TB) (*Server, *fakeClock) {
	tb.Helper()
	clock := newFakeClock()
	return startServer(tb, Config{Now: clock.Now, RateLimits: RateLimits{Disabled: true}}), clock
}

func slackClient(tb testing.TB, srv *Server, token string) *slack.Client {
	tb.Helper()
	return slack.New(token, slack.OptionAPIURL(srv.URL()+"/api/"))
}

func testContext(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), 10*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// apiAnswer is a raw Web API answer.
type apiAnswer struct {
	status int
	header http.Header
	body   map[string]any
}

func (a apiAnswer) errorCode() string {
	s, _ := a.body["error"].(string)
	return s
}

// callForm calls a Web API method with a form body, the token as a field.
func callForm(tb testing.TB, srv *Server, method, token string, form url.Values) apiAnswer {
	tb.Helper()
	if form == nil {
		form = url.Values{}
	}
	if token != "" {
		form.Set("token", token)
	}
	req, err := http.NewRequestWithContext(testContext(tb), http.MethodPost, srv.URL()+"/api/"+method, strings.NewReader(form.Encode()))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(tb, req)
}

// callJSON calls a Web API method with a JSON body and a bearer token.
func callJSON(tb testing.TB, srv *Server, method, token string, body any) apiAnswer {
	tb.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		tb.Fatal(err)
	}
	req, err := http.NewRequestWithContext(testContext(tb), http.MethodPost, srv.URL()+"/api/"+method, bytes.NewReader(raw))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(tb, req)
}

func do(tb testing.TB, req *http.Request) apiAnswer {
	tb.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	a := apiAnswer{status: resp.StatusCode, header: resp.Header}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			tb.Fatalf("decoding %s: %v", raw, err)
		}
	}
	return a
}

// wantOK fails unless the answer is HTTP 200 with ok=true.
func wantOK(tb testing.TB, a apiAnswer) {
	tb.Helper()
	if a.status != http.StatusOK || a.body["ok"] != true {
		tb.Fatalf("want ok, got HTTP %d %v", a.status, a.body)
	}
}

// wantError fails unless the answer is HTTP 200 with ok=false and code.
func wantError(tb testing.TB, a apiAnswer, code string) {
	tb.Helper()
	if a.status != http.StatusOK || a.body["ok"] != false || a.errorCode() != code {
		tb.Fatalf("want error %q, got HTTP %d %v", code, a.status, a.body)
	}
}

// slackErr returns the Slack error code of err, "" for nil.
func slackErr(tb testing.TB, err error) string {
	tb.Helper()
	if err == nil {
		return ""
	}
	var se slack.SlackErrorResponse
	if !errors.As(err, &se) {
		tb.Fatalf("want a Slack error response, got %T %v", err, err)
	}
	return se.Err
}

// postJSONTo posts a JSON body to an absolute URL (a response_url).
func postJSONTo(tb testing.TB, u string, body any) apiAnswer {
	tb.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		tb.Fatal(err)
	}
	req, err := http.NewRequestWithContext(testContext(tb), http.MethodPost, u, bytes.NewReader(raw))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return do(tb, req)
}

// formValue decodes a form body and returns one field.
func formValue(tb testing.TB, body []byte, key string) string {
	tb.Helper()
	v, err := url.ParseQuery(string(body))
	if err != nil {
		tb.Fatalf("decoding form %q: %v", body, err)
	}
	return v.Get(key)
}
