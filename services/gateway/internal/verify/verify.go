// Package verify checks Slack's request signatures: "v0=" + hex HMAC-SHA256
// of "v0:{timestamp}:{raw body}" with the app's signing secret, compared in
// constant time, the timestamp no more than five minutes away from now.
// It works on the raw body and nothing else, so nothing from the request is
// parsed before it is known to come from Slack.
package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"sync"
	"time"
)

// Header names Slack signs requests with.
const (
	HeaderSignature = "X-Slack-Signature"
	HeaderTimestamp = "X-Slack-Request-Timestamp"
)

// DefaultSkew is Slack's documented tolerance for the timestamp.
const DefaultSkew = 5 * time.Minute

// Reasons a request is refused. They are safe to log: they carry neither
// the secret nor the expected signature.
var (
	ErrMissing   = errors.New("signature or timestamp header missing")
	ErrMalformed = errors.New("signature or timestamp header malformed")
	ErrStale     = errors.New("timestamp too far from now")
	ErrMismatch  = errors.New("signature does not match")
)

// Verifier checks signatures. It is safe for concurrent use.
type Verifier struct {
	secrets [][]byte
	skew    time.Duration
	now     func() time.Time
	pools   []sync.Pool
}

// New returns a verifier accepting signatures made with any of secrets
// (several during a secret's rotation). now may be nil (time.Now).
func New(now func() time.Time, skew time.Duration, secrets ...string) (*Verifier, error) {
	if len(secrets) == 0 {
		return nil, errors.New("verify: no signing secret")
	}
	v := &Verifier{skew: skew, now: now, pools: make([]sync.Pool, len(secrets))}
	if v.now == nil {
		v.now = time.Now
	}
	if v.skew <= 0 {
		v.skew = DefaultSkew
	}
	for i, s := range secrets {
		if s == "" {
			return nil, fmt.Errorf("verify: signing secret %d is empty", i+1)
		}
		key := []byte(s)
		v.secrets = append(v.secrets, key)
		v.pools[i].New = func() any { return hmac.New(sha256.New, key) }
	}
	return v, nil
}

// ParseSignature parses a "v0=<64 hex digits>" header into its 32 bytes.
func ParseSignature(h string) ([sha256.Size]byte, error) {
	var sig [sha256.Size]byte
	if len(h) != 3+2*sha256.Size || h[:3] != "v0=" {
		return sig, ErrMalformed
	}
	if _, err := hex.Decode(sig[:], []byte(h[3:])); err != nil {
		return sig, ErrMalformed
	}
	return sig, nil
}

// ParseTimestamp parses the timestamp header: Unix seconds, digits only.
func ParseTimestamp(h string) (int64, error) {
	if h == "" || len(h) > 12 {
		return 0, ErrMalformed
	}
	for i := 0; i < len(h); i++ {
		if h[i] < '0' || h[i] > '9' {
			return 0, ErrMalformed
		}
	}
	ts, err := strconv.ParseInt(h, 10, 64)
	if err != nil {
		return 0, ErrMalformed
	}
	return ts, nil
}

// Verify checks the two header values against body.
func (v *Verifier) Verify(timestamp, signature string, body []byte) error {
	if timestamp == "" || signature == "" {
		return ErrMissing
	}
	ts, err := ParseTimestamp(timestamp)
	if err != nil {
		return err
	}
	sig, err := ParseSignature(signature)
	if err != nil {
		return err
	}
	if d := v.now().Sub(time.Unix(ts, 0)); d > v.skew || d < -v.skew {
		return ErrStale
	}
	var sum [sha256.Size]byte
	ok := 0
	for i := range v.secrets {
		h := v.pools[i].Get().(hash.Hash)
		h.Reset()
		h.Write([]byte("v0:"))
		h.Write([]byte(timestamp))
		h.Write([]byte(":"))
		h.Write(body)
		h.Sum(sum[:0])
		v.pools[i].Put(h)
		// Every secret is tried: the time taken does not say which matched.
		if hmac.Equal(sum[:], sig[:]) {
			ok++
		}
	}
	if ok == 0 {
		return ErrMismatch
	}
	return nil
}

// Sign computes the signature header for body at timestamp with secret, as
// Slack does. Tests and benchmarks use it.
func Sign(secret string, timestamp int64, body []byte) string {
	h := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(h, "v0:%d:", timestamp)
	h.Write(body)
	return "v0=" + hex.EncodeToString(h.Sum(nil))
}
