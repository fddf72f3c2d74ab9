// Package signed turns small JSON values into tamper-proof strings safe for
// URLs and cookies, and back: "<version>.<payload>.<mac>", the payload being
// base64url JSON and the MAC HMAC-SHA256 over a purpose label and the
// encoded payload. The purpose keeps a value signed for one use (an install
// ticket) from being accepted as another (an OAuth state) under the same
// key. Several keys may be given: the first signs, all verify, so a key can
// rotate while values signed with the old one are still in flight.
//
// Values are not encrypted: put nothing secret in them. The payload is
// decoded only after its MAC verifies; decoding is strict, so each value has
// exactly one spelling.
package signed

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// MinKeyLen is the shortest key accepted, in bytes.
const MinKeyLen = 32

// MaxLen bounds an encoded value before anything is decoded.
const MaxLen = 4096

// Errors of Open; they never carry key material or the value.
var (
	ErrMalformed = errors.New("signed value is malformed")
	ErrSignature = errors.New("signed value's signature does not verify")
)

var b64 = base64.RawURLEncoding.Strict()

// Codec signs and verifies values for one purpose.
type Codec struct {
	version string
	purpose []byte
	keys    [][]byte
}

// New returns a codec. version is the short prefix of encoded values (e.g.
// "v1"; no dots); purpose names what the values are for.
func New(version, purpose string, keys ...[]byte) (*Codec, error) {
	if version == "" || strings.Contains(version, ".") {
		return nil, fmt.Errorf("signed: version %q must be non-empty without dots", version)
	}
	if len(keys) == 0 {
		return nil, errors.New("signed: no key")
	}
	for i, k := range keys {
		if len(k) < MinKeyLen {
			return nil, fmt.Errorf("signed: key %d is %d bytes, want at least %d", i+1, len(k), MinKeyLen)
		}
	}
	return &Codec{version: version, purpose: []byte(purpose + "\x00"), keys: keys}, nil
}

// ParseKeys splits a comma-separated list of keys, as configured.
func ParseKeys(s string) [][]byte {
	var keys [][]byte
	for _, k := range strings.Split(s, ",") {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, []byte(k))
		}
	}
	return keys
}

func (c *Codec) mac(key []byte, payload string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(c.purpose)
	h.Write([]byte(payload))
	return h.Sum(nil)
}

// Seal encodes v as JSON and signs it with the first key.
func (c *Codec) Seal(v any) (string, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("signed: encoding: %w", err)
	}
	p := b64.EncodeToString(j)
	out := c.version + "." + p + "." + b64.EncodeToString(c.mac(c.keys[0], p))
	if len(out) > MaxLen {
		return "", fmt.Errorf("signed: value is %d bytes encoded, over %d", len(out), MaxLen)
	}
	return out, nil
}

// Open verifies raw with any key and decodes it into v.
func (c *Codec) Open(raw string, v any) error {
	if len(raw) > MaxLen {
		return ErrMalformed
	}
	rest, ok := strings.CutPrefix(raw, c.version+".")
	if !ok {
		return ErrMalformed
	}
	p, m, ok := strings.Cut(rest, ".")
	if !ok || p == "" || strings.Contains(m, ".") {
		return ErrMalformed
	}
	sig, err := b64.DecodeString(m)
	if err != nil || len(sig) != sha256.Size {
		return ErrMalformed
	}
	valid := 0
	for _, k := range c.keys {
		// No early exit: the time taken does not say which key matched.
		if hmac.Equal(sig, c.mac(k, p)) {
			valid++
		}
	}
	if valid == 0 {
		return ErrSignature
	}
	payload, err := b64.DecodeString(p)
	if err != nil {
		return ErrMalformed
	}
	if err := json.Unmarshal(payload, v); err != nil {
		return ErrMalformed
	}
	return nil
}
