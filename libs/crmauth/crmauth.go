// Package crmauth is the CRM's credential: a short-lived JWT (EdDSA,
// golang-jwt) that names the org, the CRM user and their role, signed with
// the org's private key and verified against the org's public key in a key
// registry file (CRM_KEYS_FILE). The registry holds public keys only; a key
// signs for its one org, so org A's key can never speak for org B.
package crmauth

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Audience is the aud every credential must carry.
const Audience = "crmslack"

// MaxLifetime is the longest a credential may live (exp - iat): a stolen
// one is worth minutes.
const MaxLifetime = 10 * time.Minute

// Leeway absorbs clock skew between the CRM and us.
const Leeway = 30 * time.Second

// MetadataKey is the gRPC metadata (and HTTP header) carrying the
// credential, as "Bearer <jwt>".
const MetadataKey = "authorization"

// Roles.
const (
	RoleUser  = "user"
	RoleAdmin = "admin"
)

// Claims are a verified credential.
type Claims struct {
	// Org is the CRM org the credential speaks for.
	Org string `json:"org"`
	// Email and Name describe the CRM user (Subject is their id).
	Email string `json:"email,omitempty"`
	Name  string `json:"name,omitempty"`
	// Role is RoleUser or RoleAdmin.
	Role string `json:"role"`
	jwt.RegisteredClaims
}

// Admin reports whether the credential carries the admin role.
func (c *Claims) Admin() bool { return c.Role == RoleAdmin }

// ErrInvalid marks every refused credential.
var ErrInvalid = errors.New("invalid CRM credential")

// KeyID is the key id of a public key: the first 16 bytes of its SHA-256,
// base64url. Derived, so the registry and the signer never disagree.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// Sign makes a credential for c, valid from now for ttl (at most
// MaxLifetime), signed by the org's key.
func Sign(key ed25519.PrivateKey, c Claims, now time.Time, ttl time.Duration) (string, error) {
	if ttl <= 0 || ttl > MaxLifetime {
		return "", fmt.Errorf("crmauth: lifetime %s is not in (0, %s]", ttl, MaxLifetime)
	}
	c.Audience = jwt.ClaimStrings{Audience}
	c.IssuedAt = jwt.NewNumericDate(now)
	c.ExpiresAt = jwt.NewNumericDate(now.Add(ttl))
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, &c)
	t.Header["kid"] = KeyID(key.Public().(ed25519.PublicKey))
	return t.SignedString(key)
}

// Verify checks a credential against the registry at time now.
func (r *Keys) Verify(token string, now time.Time) (*Claims, error) {
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		key, ok := r.lookup(kid)
		if !ok {
			return nil, fmt.Errorf("unknown key id %q", kid)
		}
		if key.org != c.Org {
			return nil, fmt.Errorf("key %q signs for org %q, not %q", kid, key.org, c.Org)
		}
		return key.pub, nil
	},
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithAudience(Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	switch {
	case c.IssuedAt == nil:
		return nil, fmt.Errorf("%w: no iat", ErrInvalid)
	case c.ExpiresAt.Sub(c.IssuedAt.Time) > MaxLifetime:
		return nil, fmt.Errorf("%w: lives %s, longer than %s", ErrInvalid, c.ExpiresAt.Sub(c.IssuedAt.Time), MaxLifetime)
	case c.Org == "" || c.Subject == "":
		return nil, fmt.Errorf("%w: org and sub are required", ErrInvalid)
	case c.Role != RoleUser && c.Role != RoleAdmin:
		return nil, fmt.Errorf("%w: role %q is neither %q nor %q", ErrInvalid, c.Role, RoleUser, RoleAdmin)
	}
	return &c, nil
}

// FromAuthorization extracts the token of an "authorization" value.
func FromAuthorization(v string) (string, bool) {
	const prefix = "bearer "
	if len(v) <= len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
		return "", false
	}
	return strings.TrimSpace(v[len(prefix):]), true
}

type claimsKey struct{}

// WithClaims returns ctx carrying a verified credential.
func WithClaims(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// FromContext returns the verified credential of the call, if any.
func FromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok
}

// Bearer is a gRPC per-call credential carrying a token; it is sent only
// over a secure transport.
type Bearer string

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (b Bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{MetadataKey: "Bearer " + string(b)}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (Bearer) RequireTransportSecurity() bool { return true }
