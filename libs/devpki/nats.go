package devpki

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/crmslack/crmslack/libs/natsauth"
)

// Toolbox is the development tools' NATS user (tests, crmctl against the
// local runner): it may do anything, so it exists only on development
// servers, never in deploy/nats.
const Toolbox = "toolbox"

var natsMu sync.Mutex // one writer of nats-passwords.json per process

// NATSPassword is the NATS password of user, made on first use and kept in
// nats-passwords.json (0600).
func (d *Dir) NATSPassword(user string) (string, error) {
	natsMu.Lock()
	defer natsMu.Unlock()
	path := filepath.Join(d.path, "nats-passwords.json")
	pw := map[string]string{}
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &pw); err != nil {
			return "", fmt.Errorf("devpki: %s: %w", path, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("devpki: %w", err)
	}
	if p := pw[user]; p != "" {
		return p, nil
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	pw[user] = hex.EncodeToString(b)
	out, err := json.MarshalIndent(pw, "", "  ")
	if err != nil {
		return "", err
	}
	if err := writeAtomic(path, out, 0o600); err != nil {
		return "", err
	}
	return pw[user], nil
}

// NATSUsers are a development server's users: every service and CRM org of
// libs/natsauth with their permissions, plus the Toolbox.
func (d *Dir) NATSUsers(crmOrgs ...string) ([]*server.User, error) {
	pw := map[string]string{}
	names := append([]string{Toolbox}, natsauth.Services...)
	for _, o := range crmOrgs {
		names = append(names, natsauth.CRMUser(o))
	}
	for _, n := range names {
		p, err := d.NATSPassword(n)
		if err != nil {
			return nil, err
		}
		pw[n] = p
	}
	users, err := natsauth.Users(pw, crmOrgs)
	if err != nil {
		return nil, err
	}
	return append(users, &server.User{Username: Toolbox, Password: pw[Toolbox]}), nil
}
