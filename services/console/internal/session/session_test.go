package session_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/crmauth"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/services/console/internal/session"
)

func manager(t *testing.T, now func() time.Time) *session.Manager {
	t.Helper()
	pki := testkit.PKI(t, "o1")
	keys, err := crmauth.LoadKeys(pki.CRMKeysFile(), "CRM_KEYS_FILE")
	if err != nil {
		t.Fatal(err)
	}
	dev, err := session.ParseDevKeys("o1=" + pki.CRMKeyFile("o1"))
	if err != nil {
		t.Fatal(err)
	}
	return session.New(keys, session.Options{Now: now, Dev: dev})
}

// TestDevSign: the development sign-in signs only for its orgs, a valid
// role and an e-mail, a credential the registry verifies.
func TestDevSign(t *testing.T) {
	t.Parallel()
	m := manager(t, nil)
	for _, c := range []struct {
		name, org, email, role string
		ok                     bool
	}{
		{"admin", "o1", "ann@o1.example", crmauth.RoleAdmin, true},
		{"user", "o1", "bob@o1.example", crmauth.RoleUser, true},
		{"an org without a key", "o2", "ann@o1.example", crmauth.RoleAdmin, false},
		{"no e-mail", "o1", " ", crmauth.RoleAdmin, false},
		{"an unknown role", "o1", "ann@o1.example", "root", false},
	} {
		tok, err := m.DevSign(c.org, c.email, "Ann", c.role)
		if (err == nil) != c.ok {
			t.Errorf("%s: %v, want ok=%v", c.name, err, c.ok)
			continue
		}
		if !c.ok {
			continue
		}
		rec := httptest.NewRecorder()
		s, err := m.Start(rec, tok)
		if err != nil || s.Claims.Org != c.org || s.Claims.Role != c.role || s.Claims.Email != c.email {
			t.Errorf("%s: session %+v, %v", c.name, s, err)
		}
	}
}

// TestReadChecksEveryRequest: a session is its credential, verified at
// each read; its CSRF token is its own.
func TestReadChecksEveryRequest(t *testing.T) {
	t.Parallel()
	now := time.Now()
	clock := func() time.Time { return now }
	m := manager(t, clock)
	tokA, _ := m.DevSign("o1", "ann@o1.example", "", crmauth.RoleAdmin)
	tokB, _ := m.DevSign("o1", "bob@o1.example", "", crmauth.RoleUser)
	read := func(tok string) (*session.Session, error) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if tok != "" {
			r.AddCookie(&http.Cookie{Name: session.CookieName, Value: tok})
		}
		return m.Read(r)
	}
	a, err := read(tokA)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := read(tokB)
	if a.CSRF == b.CSRF || !a.CheckCSRF(a.CSRF) || a.CheckCSRF(b.CSRF) || a.CheckCSRF("") {
		t.Fatal("CSRF tokens are not per session")
	}
	if _, err := read(""); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("no cookie: %v", err)
	}
	now = now.Add(session.DevLifetime + crmauth.Leeway + time.Second)
	if _, err := read(tokA); !errors.Is(err, crmauth.ErrInvalid) {
		t.Fatalf("an expired credential: %v, want refused", err)
	}
}
