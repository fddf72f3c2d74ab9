// Package sealing encrypts Slack tokens at rest with AES-256-GCM.
//
// A [Keyring] holds one current key, used to seal, and any number of older
// keys, kept to open what they sealed until every row has been re-sealed.
// Each [Sealed] value carries the id of its key beside the ciphertext, so a
// key can rotate without a flag day. A fresh random 96-bit nonce is drawn for
// every seal. The caller passes additional authenticated data naming the row
// and the field (org, team, "bot"), so a ciphertext copied into another row
// or field fails to open.
package sealing

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// KeySize is the AES-256 key length in bytes.
const KeySize = 32

// Errors returned by Open. Neither says anything about the key or the data.
var (
	// ErrUnknownKey: the value was sealed under a key id the keyring lacks.
	ErrUnknownKey = errors.New("sealing: sealed under an unknown key id")
	// ErrOpen: the ciphertext, its nonce or its associated data do not
	// authenticate under the named key (wrong key, tampering, or a value
	// moved to another row).
	ErrOpen = errors.New("sealing: ciphertext does not authenticate")
)

// Sealed is an encrypted value: the key id and nonce||ciphertext||tag.
type Sealed struct {
	KeyID string
	Data  []byte
}

// IsZero reports whether s holds nothing (no value was sealed).
func (s Sealed) IsZero() bool { return s.KeyID == "" && len(s.Data) == 0 }

// Keyring seals with its current key and opens with any of its keys.
// It is safe for concurrent use.
type Keyring struct {
	current string
	aeads   map[string]cipher.AEAD
	order   []string
}

var keyIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// Key is one entry of a keyring.
type Key struct {
	ID     string
	Secret []byte // KeySize bytes
}

// NewKeyring builds a keyring; keys[0] is the current key.
func NewKeyring(keys ...Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("sealing: at least one key is needed")
	}
	k := &Keyring{current: keys[0].ID, aeads: make(map[string]cipher.AEAD, len(keys))}
	for i, key := range keys {
		if !keyIDRe.MatchString(key.ID) {
			return nil, fmt.Errorf("sealing: key %d: id %q must be 1-32 letters, digits, '_' or '-'", i+1, key.ID)
		}
		if len(key.Secret) != KeySize {
			return nil, fmt.Errorf("sealing: key %q: %d bytes, want %d", key.ID, len(key.Secret), KeySize)
		}
		if _, dup := k.aeads[key.ID]; dup {
			return nil, fmt.Errorf("sealing: key id %q appears twice", key.ID)
		}
		block, err := aes.NewCipher(key.Secret)
		if err != nil {
			return nil, fmt.Errorf("sealing: key %q: %w", key.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("sealing: key %q: %w", key.ID, err)
		}
		k.aeads[key.ID] = aead
		k.order = append(k.order, key.ID)
	}
	return k, nil
}

// ParseKeys parses "id:base64,id:base64" (standard or URL base64, padded or
// not), the first being the current key. Errors name the entry, never its
// secret.
func ParseKeys(spec string) (*Keyring, error) {
	var keys []Key
	for i, entry := range strings.Split(spec, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		id, b64, ok := strings.Cut(entry, ":")
		if !ok {
			return nil, fmt.Errorf("sealing: entry %d: want keyid:base64-of-32-bytes", i+1)
		}
		secret, err := decodeBase64(strings.TrimSpace(b64))
		if err != nil {
			return nil, fmt.Errorf("sealing: key %q: secret is not base64", strings.TrimSpace(id))
		}
		keys = append(keys, Key{ID: strings.TrimSpace(id), Secret: secret})
	}
	return NewKeyring(keys...)
}

func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// CurrentKeyID is the id new values are sealed under.
func (k *Keyring) CurrentKeyID() string { return k.current }

// KeyIDs lists the key ids, current first.
func (k *Keyring) KeyIDs() []string { return append([]string(nil), k.order...) }

// Seal encrypts plaintext under the current key, binding aad.
func (k *Keyring) Seal(plaintext, aad []byte) (Sealed, error) {
	aead := k.aeads[k.current]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return Sealed{}, fmt.Errorf("sealing: drawing a nonce: %w", err)
	}
	return Sealed{KeyID: k.current, Data: aead.Seal(nonce, nonce, plaintext, aad)}, nil
}

// Open decrypts s, checking aad. It fails with ErrUnknownKey or ErrOpen.
func (k *Keyring) Open(s Sealed, aad []byte) ([]byte, error) {
	aead, ok := k.aeads[s.KeyID]
	if !ok {
		return nil, fmt.Errorf("key id %q: %w", s.KeyID, ErrUnknownKey)
	}
	ns := aead.NonceSize()
	if len(s.Data) < ns+aead.Overhead() {
		return nil, ErrOpen
	}
	pt, err := aead.Open(nil, s.Data[:ns], s.Data[ns:], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// Stale reports whether s was sealed under a key other than the current one
// and should be re-sealed.
func (k *Keyring) Stale(s Sealed) bool { return !s.IsZero() && s.KeyID != k.current }

// AAD builds associated data from parts without ambiguity: each part is
// length-prefixed, so ("ab","c") and ("a","bc") differ.
func AAD(parts ...string) []byte {
	n := 0
	for _, p := range parts {
		n += 4 + len(p)
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		l := len(p)
		b = append(b, byte(l>>24), byte(l>>16), byte(l>>8), byte(l))
		b = append(b, p...)
	}
	return b
}
