// Package trust names what a service's trust is made of: its TLS identity
// (certificate, key, CA), the CRM orgs' key registry, and its NATS user. A service
// embeds [Files] in its Config and reads it with [FromEnv]; the skeleton
// (libs/service) finds it there, refuses to start without it, and builds the
// service's mutual TLS and its authorization of callers from it. There is no
// insecure mode: a missing file is a configuration error naming its
// variable.
package trust

import (
	"errors"

	"github.com/nats-io/nats.go"

	"github.com/crmslack/crmslack/libs/crmauth"
	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/libs/identity"
	"github.com/crmslack/crmslack/libs/mtls"
)

// Variable names, shared by every service.
const (
	VarCert         = "TLS_CERT_FILE"
	VarKey          = "TLS_KEY_FILE"
	VarCA           = "TLS_CA_FILE"
	VarCRMKeys      = "CRM_KEYS_FILE"
	VarNATSUser     = "NATS_USER"
	VarNATSPassword = "NATS_PASSWORD"
)

// Files are a service's trust files. Each is re-read when it changes.
type Files struct {
	// TLSCertFile is TLS_CERT_FILE: the service's certificate chain (PEM),
	// its identity the URI SAN spiffe://crmslack/<service>. Required.
	TLSCertFile string
	// TLSKeyFile is TLS_KEY_FILE: the certificate's private key (PEM).
	// Required.
	TLSKeyFile string
	// TLSCAFile is TLS_CA_FILE: the CA certificate(s) every peer's
	// certificate must chain to (PEM). Required.
	TLSCAFile string
	// CRMKeysFile is CRM_KEYS_FILE: the CRM orgs' public keys (JSON, see
	// libs/crmauth), for services that serve gRPC. Required there.
	CRMKeysFile string
	// NATSUser is NATS_USER: the service's NATS user (libs/natsauth gives
	// it its permissions). Required.
	NATSUser string
	// NATSPassword is NATS_PASSWORD: that user's password. Required.
	NATSPassword string
}

// FromEnv reads the files' names. Missing ones are reported by the
// skeleton's [Files.Validate], so a service's own config tests need none.
func FromEnv(l *envconfig.Loader) Files {
	return Files{
		TLSCertFile:  l.String(VarCert, ""),
		TLSKeyFile:   l.String(VarKey, ""),
		TLSCAFile:    l.String(VarCA, ""),
		CRMKeysFile:  l.String(VarCRMKeys, ""),
		NATSUser:     l.String(VarNATSUser, ""),
		NATSPassword: l.String(VarNATSPassword, ""),
	}
}

// TrustFiles returns f; through embedding it is how the skeleton finds a
// service's trust files in its Config.
func (f Files) TrustFiles() Files { return f }

// Validate names every missing file; serving says whether the service
// serves gRPC (and so verifies CRM credentials), onBus whether it uses NATS
// (and so needs its NATS user).
func (f Files) Validate(serving, onBus bool) error {
	var errs []error
	for _, v := range []struct{ name, val string }{{VarCert, f.TLSCertFile}, {VarKey, f.TLSKeyFile}, {VarCA, f.TLSCAFile}} {
		if v.val == "" {
			errs = append(errs, errors.New(v.name+": required (the service's mutual TLS identity; see docs/security.md)"))
		}
	}
	if onBus && f.NATSUser == "" {
		errs = append(errs, errors.New(VarNATSUser+": required (the service's NATS user; see docs/security.md)"))
	}
	if onBus && f.NATSPassword == "" {
		errs = append(errs, errors.New(VarNATSPassword+": required (the NATS user's password)"))
	}
	if serving && f.CRMKeysFile == "" {
		errs = append(errs, errors.New(VarCRMKeys+": required (the CRM orgs' public keys; see docs/security.md)"))
	}
	return errors.Join(errs...)
}

// Identity loads the TLS identity.
func (f Files) Identity() (*mtls.Identity, error) {
	return mtls.Load(mtls.Files{Cert: f.TLSCertFile, Key: f.TLSKeyFile, CA: f.TLSCAFile, CertVar: VarCert, KeyVar: VarKey, CAVar: VarCA})
}

// CRMKeys loads the CRM key registry.
func (f Files) CRMKeys() (*crmauth.Keys, error) { return crmauth.LoadKeys(f.CRMKeysFile, VarCRMKeys) }

// Loaded is a service's trust, loaded.
type Loaded struct {
	// Identity is the service's mutual TLS identity.
	Identity *mtls.Identity
	// CRMKeys verifies CRM credentials; nil unless serving.
	CRMKeys *crmauth.Keys
	// NATS are the connection options that log the service in.
	NATS []nats.Option
}

// Load validates the files and loads them; serving says whether the service
// serves gRPC, onBus whether it uses NATS. Errors name the variable at
// fault.
func (f Files) Load(serving, onBus bool) (Loaded, error) {
	if err := f.Validate(serving, onBus); err != nil {
		return Loaded{}, err
	}
	id, err := f.Identity()
	if err != nil {
		return Loaded{}, err
	}
	l := Loaded{Identity: id, NATS: []nats.Option{
		nats.UserInfo(f.NATSUser, f.NATSPassword),
		// The user may hear replies on its own inbox only (libs/natsauth).
		nats.CustomInboxPrefix(identity.NATSInbox(f.NATSUser)),
		NATSTLS(id),
	}}
	if serving {
		if l.CRMKeys, err = f.CRMKeys(); err != nil {
			return Loaded{}, err
		}
	}
	return l, nil
}

// Environ is f as KEY=VALUE environment entries, for a child process.
func (f Files) Environ() []string {
	return []string{VarCert + "=" + f.TLSCertFile, VarKey + "=" + f.TLSKeyFile, VarCA + "=" + f.TLSCAFile, VarCRMKeys + "=" + f.CRMKeysFile,
		VarNATSUser + "=" + f.NATSUser, VarNATSPassword + "=" + f.NATSPassword}
}

// NATSTLS makes a NATS connection use TLS as identity id, the server's
// certificate checked against the CA, whatever the server offers and
// wherever it is, loopback included: the servers demand a client
// certificate of the CA before the password is read, so there is no plain
// connection to fall back to (docs/security.md).
func NATSTLS(id *mtls.Identity) nats.Option {
	return func(o *nats.Options) error {
		o.TLSConfig = id.ClientConfig(identity.NATS)
		o.Secure = true
		return nil
	}
}
