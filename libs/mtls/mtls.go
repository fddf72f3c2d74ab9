// Package mtls gives a service its TLS identity for mutual TLS: its
// certificate and key, and the CA that signs every peer, read from files and
// re-read when they change, so certificates rotate without a restart.
//
// A service's identity is the URI SAN of its certificate,
// spiffe://crmslack/<service>. Hostnames are not checked: peers are known by
// that identity, which the CA vouches for, not by where they are reached.
package mtls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// TrustDomain is the SPIFFE trust domain of every crmslack identity.
const TrustDomain = "crmslack"

// ID returns the SPIFFE ID of a service name, e.g. spiffe://crmslack/teams.
func ID(name string) string { return "spiffe://" + TrustDomain + "/" + name }

// Files names the PEM files of an identity and the variables they came from
// (for errors).
type Files struct {
	// Cert is the certificate chain (leaf first), Key its private key, CA the
	// certificate(s) peers must chain to.
	Cert, Key, CA string
	// CertVar, KeyVar and CAVar name the settings in errors.
	CertVar, KeyVar, CAVar string
}

// recheck bounds how often the files are looked at: a handshake at most
// once a second costs a stat, never a parse.
const recheck = time.Second

// Identity is a loaded identity that follows its files. Safe for concurrent
// use.
type Identity struct {
	files Files

	mu      sync.Mutex
	checked time.Time
	stamp   string // mtimes and sizes of the three files
	cert    *tls.Certificate
	pool    *x509.CertPool
	name    string // the service name of our own certificate
	lastErr error
}

// Load reads the files once; an error names the variable at fault.
func Load(files Files) (*Identity, error) {
	id := &Identity{files: files}
	for _, f := range []struct{ path, name string }{{files.Cert, files.CertVar}, {files.Key, files.KeyVar}, {files.CA, files.CAVar}} {
		if f.path == "" {
			return nil, fmt.Errorf("%s: required (a PEM file)", f.name)
		}
	}
	if err := id.reload(); err != nil {
		return nil, err
	}
	return id, nil
}

// Name is the service name of this identity's certificate (the last path
// element of its SPIFFE ID).
func (id *Identity) Name() string {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.name
}

// current returns the certificate and CA pool, re-reading the files if they
// changed. A file that fails to load keeps the previous, working material
// and is reported again on the next look.
func (id *Identity) current() (*tls.Certificate, *x509.CertPool) {
	id.mu.Lock()
	defer id.mu.Unlock()
	if time.Since(id.checked) >= recheck {
		id.checked = time.Now()
		if stamp := id.stampLocked(); stamp != id.stamp {
			if err := id.reloadLocked(); err != nil {
				id.lastErr = err
			}
		}
	}
	return id.cert, id.pool
}

// Err reports the last failed reload, nil when the files in use are current.
func (id *Identity) Err() error {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.lastErr
}

func (id *Identity) reload() error {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.reloadLocked()
}

func (id *Identity) stampLocked() string {
	var b strings.Builder
	for _, p := range []string{id.files.Cert, id.files.Key, id.files.CA} {
		if fi, err := os.Stat(p); err == nil {
			fmt.Fprintf(&b, "%d/%d;", fi.ModTime().UnixNano(), fi.Size())
		} else {
			b.WriteString("missing;")
		}
	}
	return b.String()
}

func (id *Identity) reloadLocked() error {
	stamp := id.stampLocked()
	cert, err := tls.LoadX509KeyPair(id.files.Cert, id.files.Key)
	if err != nil {
		return fmt.Errorf("%s/%s: %w", id.files.CertVar, id.files.KeyVar, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return fmt.Errorf("%s: %w", id.files.CertVar, err)
	}
	name, err := serviceOf(leaf)
	if err != nil {
		return fmt.Errorf("%s: %w", id.files.CertVar, err)
	}
	cert.Leaf = leaf
	caPEM, err := os.ReadFile(id.files.CA)
	if err != nil {
		return fmt.Errorf("%s: %w", id.files.CAVar, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("%s: no PEM certificate in %s", id.files.CAVar, id.files.CA)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}, Intermediates: intermediates(cert.Certificate)}); err != nil {
		return fmt.Errorf("%s: the certificate does not chain to %s: %w", id.files.CertVar, id.files.CAVar, err)
	}
	id.cert, id.pool, id.name, id.stamp, id.lastErr = &cert, pool, name, stamp, nil
	return nil
}

func intermediates(chain [][]byte) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, der := range chain[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			pool.AddCert(c)
		}
	}
	return pool
}

// serviceOf returns the service name in a certificate's one crmslack SPIFFE
// URI SAN.
func serviceOf(c *x509.Certificate) (string, error) {
	var names []string
	for _, u := range c.URIs {
		if name, ok := parseID(u); ok {
			names = append(names, name)
		}
	}
	if len(names) != 1 {
		return "", fmt.Errorf("certificate %q must carry exactly one URI SAN %s, has %d", c.Subject.CommonName, ID("<service>"), len(names))
	}
	return names[0], nil
}

func parseID(u *url.URL) (string, bool) {
	if u.Scheme != "spiffe" || u.Host != TrustDomain || u.RawQuery != "" || u.Fragment != "" {
		return "", false
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" || strings.ContainsAny(name, " \t") {
		return "", false
	}
	return name, true
}

// verify checks a peer's chain against the current CA for the given usage
// and returns the peer's service name.
func (id *Identity) verify(raw [][]byte, usage x509.ExtKeyUsage) (string, error) {
	if len(raw) == 0 {
		return "", errors.New("mtls: the peer presented no certificate")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, der := range raw {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return "", fmt.Errorf("mtls: peer certificate: %w", err)
		}
		certs[i] = c
	}
	_, pool := id.current()
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: intermediates(raw), KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return "", fmt.Errorf("mtls: peer certificate: %w", err)
	}
	return serviceOf(certs[0])
}

// ServerConfig is the TLS configuration of a server: it presents the current
// certificate and requires a client certificate signed by the current CA.
func (id *Identity) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			cert, _ := id.current()
			return cert, nil
		},
		// The CA is checked in VerifyPeerCertificate against the current
		// pool, which a static ClientCAs could not follow.
		ClientAuth: tls.RequireAnyClientCert,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			_, err := id.verify(raw, x509.ExtKeyUsageClientAuth)
			return err
		},
	}
}

// ClientConfig is the TLS configuration of a client of server: it presents
// the current certificate and accepts the server only with a certificate
// signed by the current CA carrying server's identity, so that no other
// part holding a certificate of the CA can stand in for it at its address.
func (id *Identity) ClientConfig(server string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, _ := id.current()
			return cert, nil
		},
		// Verification is ours (below), against the current CA and by
		// identity rather than hostname.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyPeerCertificate
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			name, err := id.verify(raw, x509.ExtKeyUsageServerAuth)
			if err != nil {
				return err
			}
			if name != server {
				return fmt.Errorf("mtls: the server is %q, not the %q this client connects to", name, server)
			}
			return nil
		},
	}
}

// PeerName returns the service name of the authenticated peer of a gRPC
// call, or "" when the call came without a verified client certificate.
func PeerName(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return ""
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		return ""
	}
	name, err := serviceOf(info.State.PeerCertificates[0])
	if err != nil {
		return ""
	}
	return name
}
