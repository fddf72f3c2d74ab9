// Package session keeps a console session: the CRM credential itself
// (libs/crmauth) in an HttpOnly, SameSite=Strict cookie, verified against
// the org's key on every request, and the CSRF token of its forms. The
// console keeps no session state of its own: a session ends when its
// credential expires (at most crmauth.MaxLifetime after it was signed).
package session

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/crmslack/crmslack/libs/crmauth"
)

// CookieName is the session cookie; it holds the credential.
const CookieName = "crmslack_console"

// Verifier checks a CRM credential (a *crmauth.Keys).
type Verifier interface {
	Verify(token string, now time.Time) (*crmauth.Claims, error)
}

// Options tune a Manager.
type Options struct {
	// Secure marks cookies Secure (the console is served over https).
	Secure bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Dev are the development signing keys by org (ParseDevKeys); empty
	// disables the development sign-in.
	Dev DevKeys
}

// Manager starts, reads and ends sessions.
type Manager struct {
	keys   Verifier
	secure bool
	now    func() time.Time
	dev    DevKeys
}

// New returns a manager verifying credentials with keys.
func New(keys Verifier, o Options) *Manager {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Manager{keys: keys, secure: o.Secure, now: o.Now, dev: o.Dev}
}

// Session is a signed-in CRM user.
type Session struct {
	// Token is the credential, sent with every gRPC call.
	Token string
	// Claims are its verified claims.
	Claims *crmauth.Claims
	// CSRF is the token every form of this session must post back.
	CSRF string
}

// ErrNoSession is a request without a session cookie.
var ErrNoSession = errors.New("not signed in")

// Read returns the request's session, verifying its credential now.
func (m *Manager) Read(r *http.Request) (*Session, error) {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return nil, ErrNoSession
	}
	return m.verify(c.Value)
}

func (m *Manager) verify(token string) (*Session, error) {
	claims, err := m.keys.Verify(token, m.now())
	if err != nil {
		return nil, err
	}
	return &Session{Token: token, Claims: claims, CSRF: csrfToken(token)}, nil
}

// Start verifies token and, if valid, sets it as the session cookie, which
// the browser drops when the credential expires.
func (m *Manager) Start(w http.ResponseWriter, token string) (*Session, error) {
	s, err := m.verify(token)
	if err != nil {
		return nil, err
	}
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: token, Path: "/", Expires: s.Claims.ExpiresAt.Time,
		HttpOnly: true, Secure: m.secure, SameSite: http.SameSiteStrictMode,
	})
	return s, nil
}

// End clears the session cookie.
func (m *Manager) End(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: m.secure, SameSite: http.SameSiteStrictMode})
}

// Secure reports whether cookies are Secure.
func (m *Manager) Secure() bool { return m.secure }

// csrfToken is derived from the credential, which only the session's
// browser holds (HttpOnly): a synchronizer token without server-side state.
func csrfToken(token string) string {
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write([]byte("crmslack console csrf v1"))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// CheckCSRF reports whether a posted form carries the session's token.
func (s *Session) CheckCSRF(posted string) bool {
	return hmac.Equal([]byte(posted), []byte(s.CSRF))
}

type sessionKey struct{}

// With returns ctx carrying s: the gRPC connections (Conn) take its
// credential from there.
func With(ctx context.Context, s *Session) context.Context {
	return context.WithValue(ctx, sessionKey{}, s)
}

// From returns the session of ctx.
func From(ctx context.Context) (*Session, bool) {
	s, ok := ctx.Value(sessionKey{}).(*Session)
	return s, ok
}

// Describe says why a credential was refused, for the sign-in page.
func Describe(err error) string {
	switch {
	case errors.Is(err, ErrNoSession):
		return "Connectez-vous pour continuer."
	case errors.Is(err, crmauth.ErrInvalid):
		return fmt.Sprintf("Identifiant CRM refusé ou expiré : reconnectez-vous (%v).", trimmed(err))
	}
	return "Identifiant CRM refusé : reconnectez-vous."
}

func trimmed(err error) string {
	s := err.Error()
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}
