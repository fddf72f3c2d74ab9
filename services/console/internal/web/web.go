// Package web is the console's HTTP port: server-rendered pages
// (html/template, embedded assets) whose every action is one call of the
// product's gRPC APIs made with the signed-in user's CRM credential.
package web

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	deliveryv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/delivery/v1"
	remindersv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/reminders/v1"
	sharingv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/sharing/v1"
	signalsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/signals/v1"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"
	workflowsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/workflows/v1"

	"github.com/crmslack/crmslack/services/console/internal/session"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Deps are the APIs the pages call, each the product's public gRPC client
// (the console's connections add the session's credential to every call).
type Deps struct {
	Sessions  *session.Manager
	Teams     teamsv1.TeamRegistryServiceClient
	Workflows workflowsv1.WorkflowActionsServiceClient
	Signals   signalsv1.SalesSignalsSettingsServiceClient
	Reminders remindersv1.ReminderPreferencesServiceClient
	Delivery  deliveryv1.DeliveryAuditServiceClient
	// DeadLetters is the egress's dead letters (on the same address).
	DeadLetters deliveryv1.DeadLetterServiceClient
	// Sharing lists a team's channels and people (workflow targets).
	Sharing sharingv1.SharingServiceClient
	Log     *slog.Logger
	// Registerer receives the console's metrics; nil registers nowhere.
	Registerer prometheus.Registerer
}

type handler struct {
	Deps
	pages   map[string]*template.Template
	signIns *prometheus.CounterVec
}

// pageNames are the templates, each rendered inside layout.html.
var pageNames = []string{"login", "teams", "workflows", "action", "signals", "reminders", "deliveries", "error"}

// New returns the console's handler.
func New(d Deps) (http.Handler, error) {
	if d.Sessions == nil || d.Log == nil || d.Teams == nil || d.Workflows == nil || d.Signals == nil || d.Reminders == nil || d.Delivery == nil || d.DeadLetters == nil || d.Sharing == nil {
		return nil, errors.New("web: every dependency is required")
	}
	h := &handler{Deps: d, pages: map[string]*template.Template{}, signIns: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crmslack_console_sign_ins_total",
		Help: "Console sign-ins, by kind (crm: a credential the CRM signed; dev: the development sign-in) and outcome (ok, refused).",
	}, []string{"kind", "outcome"})}
	for _, kind := range []string{"crm", "dev"} {
		for _, outcome := range []string{"ok", "refused"} {
			h.signIns.WithLabelValues(kind, outcome)
		}
	}
	if d.Registerer != nil {
		if err := d.Registerer.Register(h.signIns); err != nil {
			return nil, fmt.Errorf("web: registering metrics: %w", err)
		}
	}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", name, err)
		}
		h.pages[name] = t
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /login", h.loginPage)
	mux.HandleFunc("POST /login", h.login)
	mux.HandleFunc("POST /login/dev", h.devLogin)
	h.routes(mux)
	// Browsers say where a request comes from (Sec-Fetch-Site, Origin): a
	// cross-origin POST is refused before any form is read, on top of the
	// forms' CSRF tokens.
	return securityHeaders(http.NewCrossOriginProtection().Handler(mux)), nil
}

// routes are the pages that need a session.
func (h *handler) routes(mux *http.ServeMux) {
	auth := func(pattern string, f func(http.ResponseWriter, *http.Request, *session.Session)) {
		mux.Handle(pattern, h.require(f))
	}
	auth("GET /{$}", func(w http.ResponseWriter, r *http.Request, _ *session.Session) {
		http.Redirect(w, r, "/teams", http.StatusSeeOther)
	})
	auth("POST /logout", h.logout)
	auth("GET /teams", h.teamsPage)
	auth("POST /teams/install", h.install)
	auth("POST /teams/{team}/remove", h.removeTeam)
	auth("POST /integration/enable", h.enable)
	auth("POST /integration/disable", h.disable)
	auth("GET /workflows", h.workflowsPage)
	auth("GET /workflows/new", h.newActionPage)
	auth("GET /workflows/fields", h.fieldsJSON)
	auth("POST /workflows", h.saveAction)
	auth("GET /workflows/{id}", h.actionPage)
	auth("POST /workflows/{id}", h.saveAction)
	auth("POST /workflows/{id}/delete", h.deleteAction)
	auth("GET /signals", h.signalsPage)
	auth("POST /signals", h.saveSignals)
	auth("POST /signals/reset", h.resetSignals)
	auth("POST /signals/team", h.signalsTeam)
	auth("GET /reminders", h.remindersPage)
	auth("POST /reminders", h.saveReminders)
	auth("GET /deliveries", h.deliveriesPage)
	auth("POST /deliveries/dead-letters/{seq}/{op}", h.deadLetter) // replay, discard
	auth("POST /deliveries/dead-letters", h.bulk)
}

// securityHeaders keeps the pages to their own origin: no framing, no
// script or style from elsewhere (everything is embedded).
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		// No form-action: Chrome applies it to a form's redirects too, and
		// "Add to Slack" redirects to the gateway and on to Slack.
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}
