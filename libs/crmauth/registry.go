package crmauth

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Registry is the key registry file's content:
//
//	{"keys": [{"org": "acme", "public_key": "<base64 of the 32-byte Ed25519 key>"}]}
//
// An org may have several keys (rotation: add the new one, move the CRM to
// it, remove the old one).
type Registry struct {
	Keys []RegistryKey `json:"keys"`
}

// RegistryKey is one org's public key.
type RegistryKey struct {
	Org       string `json:"org"`
	PublicKey string `json:"public_key"`
}

// ParseRegistry parses and checks a registry file.
func ParseRegistry(b []byte) (Registry, error) {
	var r Registry
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Registry{}, fmt.Errorf("not a key registry: %w", err)
	}
	if _, err := r.index(); err != nil {
		return Registry{}, err
	}
	return r, nil
}

// Add adds org's key unless present; it reports whether it added it.
func (r *Registry) Add(org string, pub ed25519.PublicKey) bool {
	enc := base64.StdEncoding.EncodeToString(pub)
	if slices.Contains(r.Keys, RegistryKey{Org: org, PublicKey: enc}) {
		return false
	}
	r.Keys = append(r.Keys, RegistryKey{Org: org, PublicKey: enc})
	return true
}

// Marshal encodes the registry.
func (r Registry) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

type orgKey struct {
	org string
	pub ed25519.PublicKey
}

func (r Registry) index() (map[string]orgKey, error) {
	out := make(map[string]orgKey, len(r.Keys))
	for i, k := range r.Keys {
		if strings.TrimSpace(k.Org) == "" {
			return nil, fmt.Errorf("key %d: org is required", i)
		}
		raw, err := base64.StdEncoding.DecodeString(k.PublicKey)
		if err != nil || len(raw) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("key %d (org %s): public_key must be the base64 of a %d-byte Ed25519 key", i, k.Org, ed25519.PublicKeySize)
		}
		pub := ed25519.PublicKey(raw)
		kid := KeyID(pub)
		if prev, dup := out[kid]; dup && prev.org != k.Org {
			return nil, fmt.Errorf("key %d: registered for both %s and %s", i, prev.org, k.Org)
		}
		out[kid] = orgKey{org: k.Org, pub: pub}
	}
	return out, nil
}

// recheck bounds how often the registry file is looked at.
const recheck = time.Second

// Keys is the key registry, re-read when its file changes (a broken new
// version keeps the previous one in use and is reported by Err).
type Keys struct {
	path, variable string

	mu      sync.Mutex
	checked time.Time
	stamp   string
	byKID   map[string]orgKey
	lastErr error
}

// LoadKeys reads the registry file named by variable.
func LoadKeys(path, variable string) (*Keys, error) {
	if path == "" {
		return nil, fmt.Errorf("%s: required (the CRM orgs' key registry, JSON)", variable)
	}
	k := &Keys{path: path, variable: variable}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.reloadLocked(); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *Keys) stampLocked() string {
	fi, err := os.Stat(k.path)
	if err != nil {
		return "missing"
	}
	return fmt.Sprintf("%d/%d", fi.ModTime().UnixNano(), fi.Size())
}

func (k *Keys) reloadLocked() error {
	stamp := k.stampLocked()
	b, err := os.ReadFile(k.path)
	if err != nil {
		return fmt.Errorf("%s: %w", k.variable, err)
	}
	r, err := ParseRegistry(b)
	if err != nil {
		return fmt.Errorf("%s: %w", k.variable, err)
	}
	idx, _ := r.index()
	k.byKID, k.stamp, k.lastErr = idx, stamp, nil
	return nil
}

func (k *Keys) lookup(kid string) (orgKey, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	_, known := k.byKID[kid]
	// An unknown key looks at the file at once: a key just registered works
	// on its first use. Otherwise at most once per recheck.
	if !known || time.Since(k.checked) >= recheck {
		k.checked = time.Now()
		if k.stampLocked() != k.stamp {
			if err := k.reloadLocked(); err != nil {
				k.lastErr = err
			}
		}
	}
	key, ok := k.byKID[kid]
	return key, ok
}

// Err reports the last failed reload.
func (k *Keys) Err() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lastErr
}

// ReadPrivateKey reads an org's signing key (PKCS#8 PEM).
func ReadPrivateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM key", path)
	}
	key, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ed, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an Ed25519 key", path)
	}
	return ed, nil
}
