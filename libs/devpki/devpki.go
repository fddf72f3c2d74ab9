// Package devpki makes the development trust material the local runner and
// the tests use: a CA, one certificate per service identity
// (spiffe://crmslack/<name>) and one CRM signing key per org, kept in one
// directory and made only when missing or about to expire. Production
// material comes from the deployment's own CA and key management
// (docs/security.md); nothing here is used unless a runner asks for it.
package devpki

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/crmslack/crmslack/libs/crmauth"
	"github.com/crmslack/crmslack/libs/mtls"
	"github.com/crmslack/crmslack/libs/trust"
)

// Lifetimes: short enough that a copied development file dies on its own,
// long enough that a developer's stack runs for weeks; renewed within
// renewBefore of the end.
const (
	caLifetime   = 365 * 24 * time.Hour
	leafLifetime = 30 * 24 * time.Hour
	renewBefore  = 7 * 24 * time.Hour
)

// Dir is a directory of development trust material.
type Dir struct{ path string }

// Open makes dir (0700) and its CA if missing.
func Open(dir string) (*Dir, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("devpki: %w", err)
	}
	d := &Dir{path: dir}
	if err := d.ensureCA(); err != nil {
		return nil, err
	}
	return d, nil
}

// Path is the directory.
func (d *Dir) Path() string { return d.path }

// CAFile is the CA certificate every identity chains to.
func (d *Dir) CAFile() string { return filepath.Join(d.path, "ca.crt") }

// CRMKeysFile is the registry of the CRM orgs' public keys (CRM_KEYS_FILE).
func (d *Dir) CRMKeysFile() string { return filepath.Join(d.path, "crm-keys.json") }

// CRMKeyFile is the CRM signing key of org (PKCS#8 PEM).
func (d *Dir) CRMKeyFile(org string) string { return filepath.Join(d.path, "crm-"+org+".key") }

// Trust returns the trust files of identity name, making its certificate if
// missing or due for renewal, and its NATS user and password.
func (d *Dir) Trust(name string) (trust.Files, error) {
	if err := d.ensureLeaf(name); err != nil {
		return trust.Files{}, err
	}
	pw, err := d.NATSPassword(name)
	if err != nil {
		return trust.Files{}, err
	}
	return trust.Files{
		NATSUser:     name,
		NATSPassword: pw,
		TLSCertFile:  filepath.Join(d.path, name+".crt"),
		TLSKeyFile:   filepath.Join(d.path, name+".key"),
		TLSCAFile:    d.CAFile(),
		CRMKeysFile:  d.CRMKeysFile(),
	}, nil
}

// EnsureCRMOrgs makes a signing key for each org that has none and writes
// the key registry with every org's public key.
func (d *Dir) EnsureCRMOrgs(orgs ...string) error {
	reg := crmauth.Registry{}
	if b, err := os.ReadFile(d.CRMKeysFile()); err == nil {
		if reg, err = crmauth.ParseRegistry(b); err != nil {
			return fmt.Errorf("devpki: %s: %w", d.CRMKeysFile(), err)
		}
	}
	changed := false
	for _, org := range orgs {
		priv, err := crmauth.ReadPrivateKey(d.CRMKeyFile(org))
		if errors.Is(err, os.ErrNotExist) {
			_, priv, err = ed25519.GenerateKey(rand.Reader)
			if err == nil {
				err = writeKey(d.CRMKeyFile(org), priv)
			}
		}
		if err != nil {
			return fmt.Errorf("devpki: CRM key of %s: %w", org, err)
		}
		if reg.Add(org, priv.Public().(ed25519.PublicKey)) {
			changed = true
		}
	}
	if !changed {
		if _, err := os.Stat(d.CRMKeysFile()); err == nil {
			return nil
		}
	}
	b, err := reg.Marshal()
	if err != nil {
		return err
	}
	return writeAtomic(d.CRMKeysFile(), b, 0o644)
}

// CRMOrgs are the orgs with a signing key in the key registry.
func (d *Dir) CRMOrgs() ([]string, error) {
	b, err := os.ReadFile(d.CRMKeysFile())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("devpki: %w", err)
	}
	reg, err := crmauth.ParseRegistry(b)
	if err != nil {
		return nil, fmt.Errorf("devpki: %s: %w", d.CRMKeysFile(), err)
	}
	var orgs []string
	for _, k := range reg.Keys {
		if !slices.Contains(orgs, k.Org) {
			orgs = append(orgs, k.Org)
		}
	}
	return orgs, nil
}

func (d *Dir) ensureCA() error {
	if c, err := readCert(d.CAFile()); err == nil && time.Until(c.NotAfter) > leafLifetime {
		return nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "crmslack development CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("devpki: CA: %w", err)
	}
	if err := writeKey(filepath.Join(d.path, "ca.key"), key); err != nil {
		return err
	}
	return writeAtomic(d.CAFile(), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func (d *Dir) ensureLeaf(name string) error {
	certPath := filepath.Join(d.path, name+".crt")
	ca, err := readCert(d.CAFile())
	if err != nil {
		return fmt.Errorf("devpki: CA: %w", err)
	}
	if c, err := readCert(certPath); err == nil && time.Until(c.NotAfter) > renewBefore && c.CheckSignatureFrom(ca) == nil {
		return nil
	}
	caKey, err := readECKey(filepath.Join(d.path, "ca.key"))
	if err != nil {
		return fmt.Errorf("devpki: CA key: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	id, err := url.Parse(mtls.ID(name))
	if err != nil {
		return fmt.Errorf("devpki: identity %q: %w", name, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(leafLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{id},
		// For tools that check hostnames (curl, nats CLI); crmslack itself
		// checks the URI SAN.
		DNSNames:    []string{"localhost", name},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("devpki: certificate of %s: %w", name, err)
	}
	// Key first: a reader that sees the new certificate finds its key.
	if err := writeKey(filepath.Join(d.path, name+".key"), key); err != nil {
		return err
	}
	return writeAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return n
}

func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return x509.ParseCertificate(blk.Bytes)
}

func readECKey(path string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an ECDSA key", path)
	}
	return ec, nil
}

func writeKey(path string, key any) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("devpki: %w", err)
	}
	return writeAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// writeAtomic replaces path by a rename, so a service re-reading it never
// sees half a file.
func writeAtomic(path string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("devpki: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("devpki: %w", err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("devpki: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("devpki: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("devpki: %w", err)
	}
	return nil
}
