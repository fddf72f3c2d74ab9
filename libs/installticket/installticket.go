// Package installticket is the short-lived, signed permission to start one
// "Add to Slack" install, shared by the two services that handle it: the
// team registry issues a ticket in BeginInstall, once it has checked the
// caller is an admin of the org; the gateway's /slack/install accepts only a
// valid ticket before it sends a browser to Slack. The ticket names the org
// and the admin, so the OAuth state the gateway mints from it, and the team
// the registry finally stores, are tied to that admin's request.
//
// A ticket is a [signed] value (HMAC-SHA256, purpose-bound, several keys for
// rotation) that expires after [DefaultTTL]. Single use is the gateway's job:
// it records the ticket's Nonce with a create-only write.
package installticket

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/crmslack/crmslack/libs/signed"
)

// DefaultTTL is how long a ticket can start an install. BeginInstall runs
// when the admin clicks "Add to Slack", so minutes are plenty.
const DefaultTTL = 10 * time.Minute

// MinKeyLen is the shortest key accepted, in bytes.
const MinKeyLen = signed.MinKeyLen

// Errors of Verify. They say which check failed, never with key material.
var (
	ErrMalformed = signed.ErrMalformed
	ErrSignature = signed.ErrSignature
	ErrExpired   = errors.New("install ticket has expired")
)

// Ticket is what a ticket says.
type Ticket struct {
	OrgID     string `json:"o"`
	AdminID   string `json:"a"`
	AdminName string `json:"an,omitempty"`
	TeamHint  string `json:"th,omitempty"`
	// Nonce is unique per ticket; the gateway consumes it once.
	Nonce     string `json:"n"`
	ExpiresAt int64  `json:"e"`
}

// Expires is when the ticket stops being accepted.
func (t Ticket) Expires() time.Time { return time.Unix(t.ExpiresAt, 0) }

// Signer issues and verifies tickets.
type Signer struct {
	codec *signed.Codec
	now   func() time.Time
}

// NewSigner takes one or more keys, the first signing; each is at least
// MinKeyLen bytes. now may be nil (time.Now).
func NewSigner(now func() time.Time, keys ...[]byte) (*Signer, error) {
	c, err := signed.New("t1", "crmslack install ticket v1", keys...)
	if err != nil {
		return nil, fmt.Errorf("installticket: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	return &Signer{codec: c, now: now}, nil
}

// ParseKeys splits a comma-separated key list (INSTALL_TICKET_KEY).
func ParseKeys(s string) [][]byte { return signed.ParseKeys(s) }

// Issue signs t, valid for ttl, with a fresh nonce.
func (s *Signer) Issue(t Ticket, ttl time.Duration) (string, Ticket, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return "", Ticket{}, fmt.Errorf("installticket: nonce: %w", err)
	}
	t.Nonce = hex.EncodeToString(nonce)
	t.ExpiresAt = s.now().Add(ttl).Unix()
	raw, err := s.codec.Seal(t)
	if err != nil {
		return "", Ticket{}, fmt.Errorf("installticket: %w", err)
	}
	return raw, t, nil
}

// Verify checks a ticket's form, signature and expiry, and returns it.
func (s *Signer) Verify(raw string) (Ticket, error) {
	var t Ticket
	if err := s.codec.Open(raw, &t); err != nil {
		return Ticket{}, err
	}
	if t.OrgID == "" || t.AdminID == "" || t.Nonce == "" {
		return Ticket{}, ErrMalformed
	}
	if !s.now().Before(t.Expires()) {
		return Ticket{}, ErrExpired
	}
	return t, nil
}
