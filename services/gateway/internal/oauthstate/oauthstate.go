// Package oauthstate makes and checks the OAuth "state" of the Add-to-Slack
// flow. A state is a signed value (HMAC-SHA256, see libs/signed) that
// carries the CRM org and the admin who started the install, expires after
// [DefaultTTL], and is bound to the browser that started it: it holds the
// SHA-256 of a random nonce set in an HttpOnly cookie of that browser, so a
// state lifted from one browser's URL fails in another. Single use is the
// caller's job: it consumes [State.ID] with a create-only write.
package oauthstate

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/crmslack/crmslack/libs/signed"
)

// DefaultTTL is how long a state is accepted: time to log into Slack and
// click Allow.
const DefaultTTL = 10 * time.Minute

// CookiePrefix starts the name of the browser-binding cookie; the state id
// completes it, so installs started in two tabs do not clobber each other.
const CookiePrefix = "crmslack_oauth_"

// Reasons a state is refused. None carries key material.
var (
	ErrMalformed    = signed.ErrMalformed
	ErrSignature    = signed.ErrSignature
	ErrExpired      = errors.New("oauth state has expired")
	ErrWrongBrowser = errors.New("oauth state belongs to another browser")
)

// State is what a state says.
type State struct {
	// ID is random and unique; it is consumed once.
	ID        string `json:"i"`
	OrgID     string `json:"o"`
	AdminID   string `json:"a"`
	AdminName string `json:"an,omitempty"`
	// Browser is base64url(SHA-256(cookie nonce)).
	Browser   string `json:"b"`
	ExpiresAt int64  `json:"e"`
}

// CookieName is the name of the cookie that binds this state.
func (s State) CookieName() string { return CookiePrefix + s.ID }

// Codec issues and verifies states.
type Codec struct {
	codec *signed.Codec
	ttl   time.Duration
	now   func() time.Time
}

// New returns a codec signing with keys[0] and verifying with any key.
// now may be nil (time.Now); ttl 0 means DefaultTTL.
func New(now func() time.Time, ttl time.Duration, keys ...[]byte) (*Codec, error) {
	c, err := signed.New("s1", "crmslack slack oauth state v1", keys...)
	if err != nil {
		return nil, fmt.Errorf("oauthstate: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Codec{codec: c, ttl: ttl, now: now}, nil
}

// TTL is how long issued states live.
func (c *Codec) TTL() time.Duration { return c.ttl }

func browserHash(cookie string) string {
	h := sha256.Sum256([]byte(cookie))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// Issue makes a state for org and admin, and the cookie value that binds it
// to the browser.
func (c *Codec) Issue(org, adminID, adminName string) (raw string, st State, cookie string, err error) {
	var id [16]byte
	var nonce [32]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", State{}, "", fmt.Errorf("oauthstate: %w", err)
	}
	if _, err := rand.Read(nonce[:]); err != nil {
		return "", State{}, "", fmt.Errorf("oauthstate: %w", err)
	}
	cookie = base64.RawURLEncoding.EncodeToString(nonce[:])
	st = State{
		ID: hex.EncodeToString(id[:]), OrgID: org, AdminID: adminID, AdminName: adminName,
		Browser: browserHash(cookie), ExpiresAt: c.now().Add(c.ttl).Unix(),
	}
	raw, err = c.codec.Seal(st)
	if err != nil {
		return "", State{}, "", fmt.Errorf("oauthstate: %w", err)
	}
	return raw, st, cookie, nil
}

// Decode checks a state's signature, shape and expiry, without the
// browser: the caller needs the id to find the binding cookie.
func (c *Codec) Decode(raw string) (State, error) {
	var st State
	if err := c.codec.Open(raw, &st); err != nil {
		return State{}, err
	}
	if len(st.ID) != 32 || st.OrgID == "" || st.AdminID == "" || st.Browser == "" {
		return State{}, ErrMalformed
	}
	if _, err := hex.DecodeString(st.ID); err != nil {
		return State{}, ErrMalformed
	}
	if !c.now().Before(time.Unix(st.ExpiresAt, 0)) {
		return State{}, ErrExpired
	}
	return st, nil
}

// CheckBrowser verifies the cookie value the browser sent (empty when it
// sent none) against the state, in constant time.
func (st State) CheckBrowser(cookie string) error {
	if cookie == "" || subtle.ConstantTimeCompare([]byte(browserHash(cookie)), []byte(st.Browser)) != 1 {
		return ErrWrongBrowser
	}
	return nil
}
