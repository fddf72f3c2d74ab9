// Package sandbox is the Slack pane of `make run`: a page that shows the
// Slack stand-in's workspaces as a Slack client would (channels and DMs of a
// chosen person, messages rendered from their Block Kit, ephemeral answers,
// uploaded charts), lets that person type /zcrm and click buttons (sent to
// the gateway signed as Slack signs them), updates live as the product
// posts, and plays the CRM with a panel of demo events published on the
// CRM's own bus account. It exists only with the stand-in: real Slack has
// its own client.
package sandbox

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/crmslack/crmslack/deploy/local/demo"
	"github.com/crmslack/crmslack/libs/slackstandin"
)

//go:embed assets
var assets embed.FS

// Config configures the pane.
type Config struct {
	// Standin is the Slack stand-in the pane shows and acts through.
	Standin *slackstandin.Server
	// AppURL is the gateway's public URL: slash commands go to
	// AppURL/slack/commands, clicks to AppURL/slack/interactions.
	AppURL string
	// Org is the CRM org the panel plays.
	Org string
	// CRM publishes the panel's events as the org's CRM.
	CRM demo.Publisher
	// ReminderLead is how far ahead the panel's activity's reminder falls.
	// Default: one minute.
	ReminderLead time.Duration
	// ConsoleURL, when set, is linked from the page.
	ConsoleURL string
	// Logger gets a line per action. Default: discard.
	Logger *slog.Logger
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

// Validate says which field cannot work.
func (c Config) Validate() error {
	switch {
	case c.Standin == nil:
		return errors.New("sandbox: Standin is required")
	case c.AppURL == "":
		return errors.New("sandbox: AppURL is required")
	case c.Org == "":
		return errors.New("sandbox: Org is required")
	case c.CRM == nil:
		return errors.New("sandbox: CRM is required")
	case c.ReminderLead < 0:
		return fmt.Errorf("sandbox: ReminderLead %s must not be negative", c.ReminderLead)
	}
	return nil
}

// Server serves the pane.
type Server struct {
	cfg    Config
	slack  *slackstandin.Sender
	pages  *template.Template
	static http.Handler
	mux    *http.ServeMux

	mu        sync.Mutex
	immediate []immediateAnswer // the app's HTTP answers to slash commands, which Slack shows as ephemeral
}

// New builds the pane.
func New(cfg Config) (*Server, error) {
	if cfg.ReminderLead == 0 {
		cfg.ReminderLead = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pages, err := template.New("").Funcs(template.FuncMap{
		"clock": func(t time.Time) string { return t.UTC().Format("15:04:05") },
		"pair":  func(p *pageView, m messageView, b blockView) blockCtx { return blockCtx{p, m, b} },
		"pairE": func(c blockCtx, e elementView) elemCtx { return elemCtx{c.Page, c.Message, e} },
	}).ParseFS(assets, "assets/*.html")
	if err != nil {
		return nil, fmt.Errorf("sandbox templates: %w", err)
	}
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, slack: cfg.Standin.NewSender(nil), pages: pages, static: http.FileServerFS(static), mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /{$}", s.serveHome)
	s.mux.HandleFunc("GET /w/{team}", s.servePage)
	s.mux.HandleFunc("GET /w/{team}/c/{channel}/feed", s.serveFeed)
	s.mux.HandleFunc("POST /w/{team}/c/{channel}/slash", s.serveSlash)
	s.mux.HandleFunc("POST /w/{team}/c/{channel}/click", s.serveClick)
	s.mux.HandleFunc("POST /crm/{event}", s.serveCRM)
	s.mux.HandleFunc("GET /events", s.serveEvents)
	s.mux.HandleFunc("GET /files/{id}", s.serveFile)
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", s.static))
	return s, nil
}

// parsePages parses the embedded templates.
func parsePages() (*template.Template, error) {
	pages, err := template.New("").Funcs(template.FuncMap{
		"clock": func(t time.Time) string { return t.UTC().Format("15:04:05") },
		"pair":  func(p *pageView, m messageView, b blockView) blockCtx { return blockCtx{p, m, b} },
		"pairE": func(c blockCtx, e elementView) elemCtx { return elemCtx{c.Page, c.Message, e} },
	}).ParseFS(assets, "assets/*.html")
	if err != nil {
		return nil, fmt.Errorf("sandbox templates: %w", err)
	}
	return pages, nil
}

// blockCtx and elemCtx carry what a block's template needs to build its
// buttons' forms: where the page is and which message holds them.
type blockCtx struct {
	Page    *pageView
	Message messageView
	Block   blockView
}

type elemCtx struct {
	Page    *pageView
	Message messageView
	Element elementView
}

// Handler serves the pane. It has no sign-in (it plays Slack and the CRM
// for whoever runs make run, on loopback), so a page of another site open
// in the same browser must not drive it: cross-origin POSTs are refused.
func (s *Server) Handler() http.Handler {
	return securityHeaders(http.NewCrossOriginProtection().Handler(s.mux))
}

// securityHeaders: the page loads nothing from elsewhere but the images a
// message links to, and runs only its own script.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' http: https: data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

// Run serves the pane on addr until ctx ends.
func (s *Server) Run(ctx context.Context, lis net.Listener) error {
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(lis) }()
	select {
	case err := <-errc:
		return fmt.Errorf("sandbox: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		_ = hs.Close()
	}
	return nil
}
