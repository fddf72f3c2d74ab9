package session

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/crmslack/crmslack/libs/crmauth"
)

// DevKeys are the CRM signing keys of the development sign-in, by org.
type DevKeys map[string]ed25519.PrivateKey

// ParseDevKeys reads CONSOLE_DEV_CRM_KEYS: "org=path,org2=path2", each path
// an org's Ed25519 signing key (PKCS#8 PEM, as libs/devpki writes them).
func ParseDevKeys(s string) (DevKeys, error) {
	out := DevKeys{}
	for _, kv := range strings.Split(s, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		org, path, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(org) == "" || strings.TrimSpace(path) == "" {
			return nil, fmt.Errorf("%q is not org=path-to-key", kv)
		}
		key, err := crmauth.ReadPrivateKey(strings.TrimSpace(path))
		if err != nil {
			return nil, fmt.Errorf("key of %s: %w", org, err)
		}
		out[strings.TrimSpace(org)] = key
	}
	return out, nil
}

// DevOrgs are the orgs the development sign-in can sign for, sorted.
func (m *Manager) DevOrgs() []string {
	orgs := make([]string, 0, len(m.dev))
	for o := range m.dev {
		orgs = append(orgs, o)
	}
	slices.Sort(orgs)
	return orgs
}

// DevLifetime is how long a development credential lives: the longest
// crmauth accepts.
const DevLifetime = crmauth.MaxLifetime

// ErrNoDevKey is a development sign-in for an org without a configured key.
var ErrNoDevKey = errors.New("no development key for this org")

// DevSign signs a credential for a user of org with the configured
// development key, as crmctl signs with the local CRM key.
func (m *Manager) DevSign(org, email, name, role string) (string, error) {
	key, ok := m.dev[org]
	if !ok {
		return "", ErrNoDevKey
	}
	if role != crmauth.RoleAdmin && role != crmauth.RoleUser {
		return "", fmt.Errorf("role %q is neither %q nor %q", role, crmauth.RoleAdmin, crmauth.RoleUser)
	}
	email = strings.TrimSpace(email)
	id, _, _ := strings.Cut(email, "@")
	if id == "" {
		return "", errors.New("an e-mail address is required")
	}
	c := crmauth.Claims{Org: org, Email: email, Name: strings.TrimSpace(name), Role: role}
	c.Subject = "crm-" + id
	return crmauth.Sign(key, c, m.now(), DevLifetime)
}
