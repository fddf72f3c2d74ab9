package web

import (
	"bytes"
	"encoding/json"
	"html/template"
	"net/http"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/crmslack/crmslack/services/console/internal/session"
)

// page is what every template gets.
type page struct {
	Title string
	// Nav is the current section (layout's navigation).
	Nav   string
	User  *user
	CSRF  string
	Flash string
	Error string
	Data  any
}

type user struct {
	Org, Email, Name string
	Admin            bool
}

var funcs = template.FuncMap{
	"when": when,
	// errs hands the fielderror template a form's errors and one field.
	"errs": func(errs map[string]string, name string) map[string]any {
		return map[string]any{"Errors": errs, "Name": name}
	},
	// json writes v for a <script type="application/json"> (html/template
	// escapes it for that context).
	"json": func(v any) (template.JS, error) {
		b, err := json.Marshal(v)
		return template.JS(b), err
	},
}

// when writes a time for the pages (UTC, the French date order).
func when(t time.Time) string {
	if t.IsZero() || t.Unix() == 0 {
		return "—"
	}
	return t.UTC().Format("02/01/2006 15:04:05 UTC")
}

// render writes a page; s, if set, fills in the user and the CSRF token.
func (h *handler) render(w http.ResponseWriter, r *http.Request, code int, name string, p page, s *session.Session) {
	if s != nil {
		p.User = &user{Org: s.Claims.Org, Email: s.Claims.Email, Name: s.Claims.Name, Admin: s.Claims.Admin()}
		p.CSRF = s.CSRF
	}
	if p.Flash == "" {
		p.Flash = flashes[r.URL.Query().Get("ok")]
	}
	var b bytes.Buffer
	if err := h.pages[name].ExecuteTemplate(&b, "layout", p); err != nil {
		h.Log.ErrorContext(r.Context(), "rendering a console page", "page", name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(b.Bytes())
}

// flashes are the confirmations a redirect after an action shows (?ok=…):
// fixed texts, so a link cannot make the console say anything else.
var flashes = map[string]string{
	"removed":        "Équipe supprimée : plus aucune donnée CRM ne lui est envoyée.",
	"enabled":        "Intégration activée.",
	"disabled":       "Intégration désactivée : aucune donnée CRM n'est plus envoyée à Slack.",
	"installed":      "Équipe connectée.",
	"action-created": "Action instantanée enregistrée.",
	"action-updated": "Action instantanée mise à jour.",
	"action-deleted": "Action instantanée supprimée.",
	"signals-saved":  "Paramètres SalesSignals enregistrés.",
	"signals-reset":  "Paramètres SalesSignals rétablis par défaut.",
	"team-saved":     "Équipe par défaut enregistrée.",
	"reminders":      "Préférences de rappel enregistrées.",
	"replayed":       "Lettre morte renvoyée à l'envoi.",
	"discarded":      "Lettre morte supprimée.",
	"replayed-all":   "Lettres mortes renvoyées à l'envoi.",
	"discarded-all":  "Lettres mortes supprimées.",
}

// apiError is a failed call in words, and the HTTP status to answer with.
func apiError(err error) (int, string) {
	st := status.Convert(err)
	msg := st.Message()
	switch st.Code() {
	case codes.InvalidArgument:
		return http.StatusBadRequest, "Refusé : " + msg
	case codes.PermissionDenied:
		return http.StatusForbidden, "Non autorisé : " + msg
	case codes.Unauthenticated:
		return http.StatusUnauthorized, "Identifiant CRM refusé : reconnectez-vous (" + msg + ")."
	case codes.NotFound:
		return http.StatusNotFound, "Introuvable : " + msg
	case codes.FailedPrecondition:
		return http.StatusConflict, "Impossible pour l'instant : " + msg
	case codes.Aborted, codes.AlreadyExists:
		return http.StatusConflict, "Modifié entre-temps par quelqu'un d'autre : rechargez la page (" + msg + ")."
	case codes.Unavailable, codes.DeadlineExceeded:
		return http.StatusServiceUnavailable, "Service indisponible, réessayez dans un instant (" + msg + ")."
	}
	return http.StatusBadGateway, "Erreur du service : " + msg
}

// fail shows a failed call on an error page.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, s *session.Session, title string, err error) {
	code, msg := apiError(err)
	h.render(w, r, code, "error", page{Title: title, Error: msg}, s)
}
