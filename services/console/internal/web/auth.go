package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/crmslack/crmslack/services/console/internal/session"
)

// require runs f with the request's session. Without a valid credential a
// page is redirected to the sign-in page and any other request is refused
// with 401; a POST without the session's CSRF token is refused with 403.
func (h *handler) require(f func(http.ResponseWriter, *http.Request, *session.Session)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := h.Sessions.Read(r)
		if err != nil {
			h.refuse(w, r, err)
			return
		}
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil || !s.CheckCSRF(r.PostForm.Get("csrf")) {
				h.render(w, r, http.StatusForbidden, "error", page{Title: "Requête refusée", Error: "Le formulaire a expiré ou ne vient pas de cette console : rechargez la page et recommencez."}, s)
				return
			}
		}
		f(w, r.WithContext(session.With(r.Context(), s)), s)
	})
}

// refuse answers a request without a valid session.
func (h *handler) refuse(w http.ResponseWriter, r *http.Request, err error) {
	if _, had := r.Cookie(session.CookieName); had == nil {
		h.Sessions.End(w) // an expired or refused credential goes
	}
	if r.Method == http.MethodGet {
		q := url.Values{"next": {r.URL.RequestURI()}}
		if err != session.ErrNoSession {
			q.Set("expired", "1")
		}
		http.Redirect(w, r, "/login?"+q.Encode(), http.StatusSeeOther)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="crmslack console"`)
	h.render(w, r, http.StatusUnauthorized, "error", page{Title: "Connexion requise", Error: session.Describe(err)}, nil)
}

// safeNext is where to go after signing in: a path of this console only,
// never another site (browsers read "//x", "/\\x" and "/\t/x" as hosts).
func safeNext(next string) string {
	const home = "/teams"
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "/login") || strings.ContainsAny(next, "\\") {
		return home
	}
	for _, r := range next {
		if r < 0x20 || r == 0x7f {
			return home
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || strings.HasPrefix(u.Path, "//") || strings.HasPrefix(next, "//") {
		return home
	}
	return next
}
