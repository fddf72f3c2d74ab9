// Package slackstandin is a fake Slack for tests and local runs. It speaks
// Slack's wire formats (Web API, OAuth v2, file uploads, response_url) and
// refuses what Slack refuses, with Slack's error codes, rate limits and
// Block Kit limits, so an app tested against it meets no surprise in
// production. It also plays Slack toward an app: see [Sender].
//
// Every [Server] owns its state; nothing is global, so tests can run many
// servers in parallel.
package slackstandin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Config configures a [Server]. The zero value is usable: every empty field
// gets the default documented next to it.
type Config struct {
	// Seed is the initial state. Default: [DefaultSeed].
	Seed *Seed
	// App is the Slack app the stand-in hosts.
	App AppConfig
	// RateLimits configures the token buckets. Default: Slack's tiers.
	RateLimits RateLimits
	// PublicURL is the base URL minted response URLs point at when the
	// handler is served by the caller instead of [Server.Start]. Default:
	// the URL Start listens on.
	PublicURL string
	// AppURL is the app's base URL (e.g. http://127.0.0.1:8080); the
	// /_standin/slash and /_standin/click endpoints send to
	// AppURL+/slack/commands and AppURL+/slack/interactions. Default: none,
	// and those endpoints refuse.
	AppURL string
	// Now is the clock for rate limits, token and code expiry and
	// response_url expiry; tests inject a fake one. Default: time.Now.
	Now func() time.Time
	// Logger gets one line per API call (method, team, outcome; never a
	// token or a body). Default: discard.
	Logger *slog.Logger
	// StateFile, when set, is where the server keeps its state across
	// restarts: read by New (over Seed) when it exists, written every
	// second after a change while serving and at Close. Default: none,
	// the state lives in memory only.
	StateFile string
	// MaxMessages bounds the recorded messages, and each channel's
	// history, dropping the oldest. Default: 0, unbounded.
	MaxMessages int
}

// AppConfig describes the Slack app installed in the stand-in's workspaces.
type AppConfig struct {
	// AppID is the app's id. Default: "A0CRMSLACK1".
	AppID string
	// ClientID and ClientSecret authenticate oauth.v2.access and
	// apps.uninstall. Default: "1234567890.1234567890" and
	// "standin-client-secret".
	ClientID     string
	ClientSecret string
	// SigningSecret signs requests the [Sender] sends to the app. Default:
	// "standin-signing-secret".
	SigningSecret string
	// VerificationToken is the deprecated token Slack still puts in
	// payloads. Default: "standin-verification-token".
	VerificationToken string
	// BotScopes are granted to tokens from [Server.IssueBotToken] and to an
	// OAuth install that asks for no scope. Default: [DefaultBotScopes].
	BotScopes []string
	// RedirectURLs, when set, are the only prefixes an OAuth redirect_uri
	// may start with, like the app's configured redirect URLs.
	RedirectURLs []string
	// TokenRotation makes OAuth issue expiring xoxe.xoxb-1- tokens with
	// refresh tokens. Default: off.
	TokenRotation bool
	// TokenExpiresIn is the lifetime of rotating access tokens. Default:
	// 12h, Slack's 43200 seconds.
	TokenExpiresIn time.Duration
}

// DefaultBotScopes returns the bot scopes a token gets when none are asked
// for. chat:write.public is left out on purpose so not_in_channel is
// reachable. The *:history scopes let the app read back the conversations
// it is in (conversations.history), which the egress needs to find a post
// whose answer was lost.
func DefaultBotScopes() []string {
	return []string{
		"chat:write", "commands", "channels:read", "groups:read", "im:read", "im:write",
		"mpim:read", "mpim:write", "users:read", "users:read.email", "files:read", "files:write",
		"channels:history", "groups:history", "im:history", "mpim:history",
	}
}

func (c Config) withDefaults() Config {
	setDefault := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	setDefault(&c.App.AppID, "A0CRMSLACK1")
	setDefault(&c.App.ClientID, "1234567890.1234567890")
	setDefault(&c.App.ClientSecret, "standin-client-secret")
	setDefault(&c.App.SigningSecret, "standin-signing-secret")
	setDefault(&c.App.VerificationToken, "standin-verification-token")
	if c.App.BotScopes == nil {
		c.App.BotScopes = DefaultBotScopes()
	}
	if c.App.TokenExpiresIn == 0 {
		c.App.TokenExpiresIn = 12 * time.Hour
	}
	if c.RateLimits.PostMessagePerChannel == (Limit{}) {
		c.RateLimits.PostMessagePerChannel = Limit{Rate: 1, Burst: 3}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports the first field that cannot work.
func (c Config) Validate() error {
	if c.App.TokenExpiresIn < time.Second {
		return fmt.Errorf("App.TokenExpiresIn %s: must be at least 1s", c.App.TokenExpiresIn)
	}
	if err := c.RateLimits.PostMessagePerChannel.validate(); err != nil {
		return fmt.Errorf("RateLimits.PostMessagePerChannel: %w", err)
	}
	for m, l := range c.RateLimits.Methods {
		if _, ok := methods[m]; !ok {
			return fmt.Errorf("RateLimits.Methods[%q]: unknown method", m)
		}
		if err := l.validate(); err != nil {
			return fmt.Errorf("RateLimits.Methods[%q]: %w", m, err)
		}
	}
	if c.MaxMessages < 0 {
		return fmt.Errorf("MaxMessages %d: must not be negative", c.MaxMessages)
	}
	if c.PublicURL != "" && !strings.HasPrefix(c.PublicURL, "http") {
		return fmt.Errorf("PublicURL %q: must be an http(s) URL", c.PublicURL)
	}
	if c.AppURL != "" {
		if u, err := url.Parse(c.AppURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("AppURL %q: must be an http(s) URL", c.AppURL)
		}
	}
	return nil
}

// Server is the Slack stand-in. Create it with [New]; serve [Server.Handler]
// yourself or call [Server.Start].
type Server struct {
	cfg  Config
	seed *Seed
	mux  *http.ServeMux

	mu        sync.Mutex
	st        *state
	tokens    map[string]*token
	refreshes map[string]*refreshToken
	codes     map[string]*authCode
	uploads   map[string]*upload // by file id
	tickets   map[string]*upload // by upload URL ticket
	completed []string           // file ids in completion order
	responses map[string]*responseURL
	messages  []Message
	lastTS    int64 // microseconds of the newest ts handed out
	buckets   map[string]*bucket
	faults    map[string]*fault
	latency   map[string]time.Duration
	stats     Stats
	reqs      uint64        // Web API calls answered: X-Slack-Req-Id
	changed   chan struct{} // closed and replaced whenever an upload is completed
	waiters   map[*messageWaiter]struct{}
	baseURL   string
	appURL    string  // Config.AppURL without a trailing slash
	relay     *Sender // sends for /_standin/slash and /_standin/click
	httpSrv   *http.Server
	// dirty counts changes, saved the count last written to StateFile.
	dirty, saved uint64
	// closing ends injected latencies so Close does not wait for them.
	closing   chan struct{}
	closeOnce sync.Once
}

// New builds a Server from cfg.
func New(cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("slackstandin config: %w", err)
	}
	seed := cfg.Seed
	if seed == nil {
		seed = DefaultSeed()
	}
	if err := seed.Validate(); err != nil {
		return nil, fmt.Errorf("slackstandin seed: %w", err)
	}
	s := &Server{
		cfg:       cfg,
		seed:      seed,
		tokens:    map[string]*token{},
		refreshes: map[string]*refreshToken{},
		codes:     map[string]*authCode{},
		baseURL:   strings.TrimSuffix(cfg.PublicURL, "/"),
		appURL:    strings.TrimSuffix(cfg.AppURL, "/"),
		closing:   make(chan struct{}),
	}
	s.relay = s.NewSender(nil)
	s.resetLocked()
	if cfg.StateFile != "" {
		if err := s.loadState(); err != nil {
			return nil, err
		}
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("/api/{method}", s.serveAPI)
	s.mux.HandleFunc("POST /upload/v1/{ticket}", s.serveUpload)
	s.mux.HandleFunc("POST /commands/{team}/{n}/{id}", s.serveResponseURL)
	s.mux.HandleFunc("POST /actions/{team}/{n}/{id}", s.serveResponseURL)
	s.mux.HandleFunc("GET /oauth/v2/authorize", s.serveAuthorize)
	s.mux.HandleFunc("GET /_standin/messages", s.serveRecordedMessages)
	s.mux.HandleFunc("GET /_standin/files", s.serveRecordedFiles)
	s.mux.HandleFunc("GET /_standin/files/{id}/content", s.serveFileContent)
	s.mux.HandleFunc("GET /_standin/stats", s.serveStats)
	s.mux.HandleFunc("POST /_standin/reset", s.serveReset)
	s.mux.HandleFunc("POST /_standin/tokens", s.serveIssueToken)
	s.mux.HandleFunc("POST /_standin/slash", s.serveSlash)
	s.mux.HandleFunc("POST /_standin/click", s.serveClick)
	return s, nil
}

// Handler serves the Web API under /api/, the upload and response URLs, the
// OAuth authorize page, the /_standin/ inspection endpoints and the
// /_standin/slash and /_standin/click endpoints that act as a Slack user
// toward Config.AppURL.
func (s *Server) Handler() http.Handler {
	if s.cfg.StateFile != "" {
		return s.persisting(s.mux)
	}
	return s.mux
}

// Start serves the handler on addr ("" means 127.0.0.1:0, a free port).
func (s *Server) Start(addr string) error {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("slackstandin listen: %w", err)
	}
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	if s.httpSrv != nil {
		s.mu.Unlock()
		_ = lis.Close()
		return errors.New("slackstandin: already started")
	}
	s.httpSrv = hs
	if s.baseURL == "" {
		s.baseURL = "http://" + lis.Addr().String()
	}
	s.mu.Unlock()
	go func() {
		if err := hs.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.cfg.Logger.Error("slack stand-in stopped serving", "err", err)
		}
	}()
	if s.cfg.StateFile != "" {
		go s.saveLoop()
	}
	return nil
}

// URL is the base URL of the server ("http://127.0.0.1:port"); slack-go wants
// URL()+"/api/" as its API URL.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.baseURL
}

// Close stops a server started with Start, cutting injected latencies short
// and letting other requests in flight finish for up to five seconds. It is
// safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closing) })
	s.mu.Lock()
	hs := s.httpSrv
	s.httpSrv = nil
	s.mu.Unlock()
	if hs == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(ctx); err != nil {
		_ = hs.Close()
	}
	if err := s.SaveState(); err != nil {
		s.cfg.Logger.Error("slack stand-in state not saved", "err", err)
	}
}

// Reset restores the seeded workspaces and forgets every record, upload,
// response URL, rate-limit bucket, injected fault and statistic. Tokens stay
// valid so a test can keep its client.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetLocked()
}

func (s *Server) resetLocked() {
	s.st = newState(s.seed, s.cfg.App.AppID)
	s.uploads = map[string]*upload{}
	s.tickets = map[string]*upload{}
	s.completed = nil
	s.responses = map[string]*responseURL{}
	s.messages = nil
	for w := range s.waiters {
		w.have = 0 // the records they counted are gone
	}
	if s.waiters == nil {
		s.waiters = map[*messageWaiter]struct{}{}
	}
	s.buckets = map[string]*bucket{}
	s.faults = map[string]*fault{}
	s.latency = map[string]time.Duration{}
	s.stats = newStats()
	if s.changed != nil {
		close(s.changed)
	}
	s.changed = make(chan struct{})
}

func (s *Server) now() time.Time { return s.cfg.Now() }

// fault makes the next calls of a method fail.
type fault struct {
	remaining int
	status    int
}

// InjectFailures makes the next n calls of method fail with HTTP status
// (meant for 5xx) before any side effect, the way an overloaded Slack edge
// does. method is a Web API method name, "upload" for the upload URL or
// "response_url".
func (s *Server) InjectFailures(method string, n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[method] = &fault{remaining: n, status: status}
}

// SetLatency delays every call of method (named as for InjectFailures) by d
// before it is handled; zero removes the delay.
func (s *Server) SetLatency(method string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d <= 0 {
		delete(s.latency, method)
		return
	}
	s.latency[method] = d
}

// interfere applies the latency and injected failures configured for method.
// It reports whether it already answered the request.
func (s *Server) interfere(w http.ResponseWriter, r *http.Request, method string) bool {
	s.mu.Lock()
	d := s.latency[method]
	s.mu.Unlock()
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return true
		case <-s.closing:
			http.Error(w, "stand-in closing", http.StatusServiceUnavailable)
			return true
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults[method]
	if f == nil || f.remaining <= 0 {
		return false
	}
	f.remaining--
	s.stats.Injected[method]++
	// Slack's edge answers 5xx with an HTML page, not JSON.
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(f.status)
	_, _ = fmt.Fprintf(w, "<html><body><h1>%d %s</h1></body></html>\n", f.status, http.StatusText(f.status))
	return true
}

// obj is a JSON object in a Web API response.
type obj = map[string]any

// apiError is a Web API failure: HTTP 200 with ok=false.
type apiError struct {
	code     string
	needed   string   // missing_scope only
	provided string   // missing_scope only
	messages []string // response_metadata.messages
}

func (e *apiError) Error() string { return e.code }

func errCode(code string, messages ...string) *apiError {
	return &apiError{code: code, messages: messages}
}

// invalidArgs is Slack's answer to a missing or malformed argument.
func invalidArgs(format string, a ...any) *apiError {
	return errCode("invalid_arguments", "[ERROR] "+fmt.Sprintf(format, a...))
}

// rateLimitedError becomes HTTP 429 with Retry-After.
type rateLimitedError struct {
	retryAfter time.Duration
}

func (e *rateLimitedError) Error() string { return "ratelimited" }

// retryAfterSeconds rounds up: answering 0 would invite an immediate retry.
func (e *rateLimitedError) retryAfterSeconds() int {
	secs := int((e.retryAfter + time.Second - 1) / time.Second)
	return max(secs, 1)
}

// jsonContentType is every JSON answer's Content-Type, one slice for all
// (net/http copies the header when it writes it); Slack always sets a
// charset.
var jsonContentType = []string{"application/json; charset=utf-8"}

// writeJSON writes a JSON answer.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeAPIResult writes a Web API outcome the way Slack does.
func writeAPIResult(w http.ResponseWriter, resp obj, err error) {
	var rl *rateLimitedError
	var ae *apiError
	switch {
	case err == nil:
		resp["ok"] = true
		writeJSON(w, http.StatusOK, resp)
	case errors.As(err, &rl):
		w.Header().Set("Retry-After", fmt.Sprint(rl.retryAfterSeconds()))
		writeJSON(w, http.StatusTooManyRequests, obj{"ok": false, "error": "ratelimited"})
	case errors.As(err, &ae):
		body := obj{"ok": false, "error": ae.code}
		if ae.needed != "" {
			body["needed"] = ae.needed
			body["provided"] = ae.provided
		}
		if len(ae.messages) > 0 {
			body["response_metadata"] = obj{"messages": ae.messages}
		}
		writeJSON(w, http.StatusOK, body)
	default:
		writeJSON(w, http.StatusOK, obj{"ok": false, "error": "internal_error"})
	}
}
