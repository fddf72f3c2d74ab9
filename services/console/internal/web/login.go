package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/crmslack/crmslack/services/console/internal/session"
)

// loginCookie holds the sign-in form's CSRF token (double submit): there
// is no session yet to derive it from.
const loginCookie = "crmslack_console_login"

type loginData struct {
	DevOrgs    []string
	DevMinutes int
	Next       string
}

func (h *handler) loginPage(w http.ResponseWriter, r *http.Request) {
	p := page{Title: "Connexion"}
	if r.URL.Query().Get("expired") == "1" {
		p.Error = "Votre session a expiré ou son identifiant a été refusé : reconnectez-vous."
	}
	h.renderLogin(w, r, http.StatusOK, p)
}

func (h *handler) renderLogin(w http.ResponseWriter, r *http.Request, code int, p page) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: tok, Path: "/login", HttpOnly: true,
		Secure: h.Sessions.Secure(), SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	p.CSRF = tok
	p.Data = loginData{DevOrgs: h.Sessions.DevOrgs(), DevMinutes: int(session.DevLifetime.Minutes()), Next: safeNext(r.URL.Query().Get("next"))}
	h.render(w, r, code, "login", p, nil)
}

// loginForm parses a sign-in form and checks its CSRF token.
func (h *handler) loginForm(w http.ResponseWriter, r *http.Request) bool {
	c, err := r.Cookie(loginCookie)
	if err != nil || r.ParseForm() != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostForm.Get("csrf"))) != 1 {
		h.renderLogin(w, r, http.StatusForbidden, page{Title: "Connexion", Error: "Le formulaire a expiré : recommencez."})
		return false
	}
	return true
}

// login starts a session with a credential the CRM signed.
func (h *handler) login(w http.ResponseWriter, r *http.Request) {
	if !h.loginForm(w, r) {
		return
	}
	h.start(w, r, "crm", strings.TrimSpace(r.PostForm.Get("credential")))
}

// devLogin signs a credential with the configured development key.
func (h *handler) devLogin(w http.ResponseWriter, r *http.Request) {
	if len(h.Sessions.DevOrgs()) == 0 {
		http.NotFound(w, r)
		return
	}
	if !h.loginForm(w, r) {
		return
	}
	f := r.PostForm
	tok, err := h.Sessions.DevSign(f.Get("org"), f.Get("email"), f.Get("name"), f.Get("role"))
	if err != nil {
		h.signIns.WithLabelValues("dev", "refused").Inc()
		h.renderLogin(w, r, http.StatusBadRequest, page{Title: "Connexion", Error: "Connexion de développement impossible : " + err.Error()})
		return
	}
	h.start(w, r, "dev", tok)
}

func (h *handler) start(w http.ResponseWriter, r *http.Request, kind, token string) {
	s, err := h.Sessions.Start(w, token)
	if err != nil {
		h.signIns.WithLabelValues(kind, "refused").Inc()
		h.renderLogin(w, r, http.StatusUnauthorized, page{Title: "Connexion", Error: session.Describe(err)})
		return
	}
	h.signIns.WithLabelValues(kind, "ok").Inc()
	h.Log.InfoContext(r.Context(), "console sign-in", "org", s.Claims.Org, "user", s.Claims.Subject, "role", s.Claims.Role)
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Path: "/login", MaxAge: -1})
	http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
}

func (h *handler) logout(w http.ResponseWriter, r *http.Request, _ *session.Session) {
	h.Sessions.End(w)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
