package devpki

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/crmslack/crmslack/libs/identity"
	"github.com/crmslack/crmslack/libs/natsauth"
	"github.com/crmslack/crmslack/libs/trust"
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
	pw, err := d.natsPasswords()
	if err != nil {
		return "", err
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
	if err := writeAtomic(d.natsPasswordsFile(), out, 0o600); err != nil {
		return "", err
	}
	return pw[user], nil
}

// KnownNATSPassword is user's NATS password if one was made, for a client
// of a running server: a password made now would be one the server does not
// know.
func (d *Dir) KnownNATSPassword(user string) (string, error) {
	natsMu.Lock()
	defer natsMu.Unlock()
	pw, err := d.natsPasswords()
	if err != nil {
		return "", err
	}
	if pw[user] == "" {
		return "", fmt.Errorf("devpki: no NATS user %s in %s (the local runner makes one per org of LOCAL_CRM_ORGS)", user, d.natsPasswordsFile())
	}
	return pw[user], nil
}

func (d *Dir) natsPasswordsFile() string { return filepath.Join(d.path, "nats-passwords.json") }

// natsPasswords reads nats-passwords.json; the caller holds natsMu.
func (d *Dir) natsPasswords() (map[string]string, error) {
	pw := map[string]string{}
	b, err := os.ReadFile(d.natsPasswordsFile())
	if errors.Is(err, os.ErrNotExist) {
		return pw, nil
	}
	if err != nil {
		return nil, fmt.Errorf("devpki: %w", err)
	}
	if err := json.Unmarshal(b, &pw); err != nil {
		return nil, fmt.Errorf("devpki: %s: %w", d.natsPasswordsFile(), err)
	}
	return pw, nil
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

// NATSTLS makes a NATS connection of user use TLS with the certificate of
// its identity: the CRM's (identity crm) for a CRM org's user, the user's
// own otherwise (the Toolbox has one too). Every development server demands
// it (ServerTLS).
func (d *Dir) NATSTLS(user string) (nats.Option, error) {
	name := user
	if strings.HasPrefix(user, natsauth.CRMUser("")) {
		name = identity.CRM
	}
	f, err := d.Trust(name)
	if err != nil {
		return nil, err
	}
	id, err := f.Identity()
	if err != nil {
		return nil, err
	}
	return trust.NATSTLS(id), nil
}

// NATSServerTLS is a development NATS server's TLS: the identity nats,
// clients' certificates of the CA required.
func (d *Dir) NATSServerTLS() (*tls.Config, error) {
	f, err := d.Trust("nats")
	if err != nil {
		return nil, err
	}
	id, err := f.Identity()
	if err != nil {
		return nil, err
	}
	return id.ServerConfig(), nil
}
