package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/devpki"
	"github.com/crmslack/crmslack/libs/natsauth"
	"github.com/crmslack/crmslack/libs/trust"
)

// publishers are crmctl's NATS connections, one per login, made on first
// use, each over TLS (no server takes a plain client): with the
// certificate of TLS_CERT_FILE/TLS_KEY_FILE/TLS_CA_FILE if set, else the
// local runner's (the CRM's for a CRM user, the toolbox's for the toolbox). A CRM event (crm.v1.<org>.…) is published as that org's CRM user,
// crm-<org>, which may publish nothing else: crmctl speaks for an org as the
// CRM would. Any other event (integration.v1.…: what services emit) is not
// the CRM's to publish; crmctl publishes it only as the operator
// (NATS_USER/NATS_PASSWORD, or the local runner's development toolbox user).
type publishers struct {
	url, pkiDir, name string
	buses             map[string]*bus.Bus
}

func newPublishers(url, pkiDir, name string) *publishers {
	return &publishers{url: url, pkiDir: pkiDir, name: name, buses: map[string]*bus.Bus{}}
}

// forSubject is the connection that may publish subject.
func (p *publishers) forSubject(ctx context.Context, subject string) (*bus.Bus, error) {
	user, opts, err := p.login(subject)
	if err != nil {
		return nil, err
	}
	if b, ok := p.buses[user]; ok {
		return b, nil
	}
	b, err := bus.Connect(ctx, bus.Config{URL: p.url, Name: p.name, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), NATSOptions: opts})
	if err != nil {
		return nil, fmt.Errorf("NATS as %s: %w", user, err)
	}
	p.buses[user] = b
	return b, nil
}

// close closes every connection.
func (p *publishers) close() {
	for _, b := range p.buses {
		_ = b.Close()
	}
}

// login is the NATS user for subject and the options that log it in.
func (p *publishers) login(subject string) (string, []nats.Option, error) {
	org, ok := crmOrg(subject)
	if !ok {
		return p.operator()
	}
	user := natsauth.CRMUser(org)
	// The CRM user's password: <USER>_NATS_PASSWORD (the variable the
	// production server reads it from), else the local runner's.
	pw := os.Getenv(natsauth.PasswordVar(user))
	if pw == "" {
		dir, err := openPKI(p.pkiDir)
		if err != nil {
			return "", nil, fmt.Errorf("%s unset and %w", natsauth.PasswordVar(user), err)
		}
		if pw, err = dir.KnownNATSPassword(user); err != nil {
			return "", nil, fmt.Errorf("%s unset and %w", natsauth.PasswordVar(user), err)
		}
	}
	withTLS, err := p.tls(user)
	if err != nil {
		return "", nil, err
	}
	return user, []nats.Option{nats.UserInfo(user, pw), withTLS, nats.CustomInboxPrefix(natsauth.CRMInbox(org))}, nil
}

// tls is the connection's TLS as user: the certificate of the TLS_*_FILE
// variables, else the local runner's certificate for user.
func (p *publishers) tls(user string) (nats.Option, error) {
	if cert := os.Getenv(trust.VarCert); cert != "" {
		id, err := trust.Files{TLSCertFile: cert, TLSKeyFile: os.Getenv(trust.VarKey), TLSCAFile: os.Getenv(trust.VarCA)}.Identity()
		if err != nil {
			return nil, err
		}
		return trust.NATSTLS(id), nil
	}
	dir, err := openPKI(p.pkiDir)
	if err != nil {
		return nil, fmt.Errorf("%s unset and %w", trust.VarCert, err)
	}
	return dir.NATSTLS(user)
}

// operator is NATS_USER/NATS_PASSWORD, or the development toolbox user of
// the local runner's PKI (which exists on development servers only).
func (p *publishers) operator() (string, []nats.Option, error) {
	if u := os.Getenv("NATS_USER"); u != "" {
		withTLS, err := p.tls(u)
		if err != nil {
			return "", nil, err
		}
		return u, []nats.Option{nats.UserInfo(u, os.Getenv("NATS_PASSWORD")), withTLS}, nil
	}
	dir, err := openPKI(p.pkiDir)
	if err != nil {
		return "", nil, fmt.Errorf("NATS_USER unset and %w", err)
	}
	pw, err := dir.KnownNATSPassword(devpki.Toolbox)
	if err != nil {
		return "", nil, err
	}
	withTLS, err := dir.NATSTLS(devpki.Toolbox)
	if err != nil {
		return "", nil, err
	}
	return devpki.Toolbox, []nats.Option{nats.UserInfo(devpki.Toolbox, pw), withTLS}, nil
}

// crmOrg is the org of a CRM subject, crm.v1.<org>.….
func crmOrg(subject string) (string, bool) {
	rest, ok := strings.CutPrefix(subject, "crm.v1.")
	if !ok {
		return "", false
	}
	org, _, ok := strings.Cut(rest, ".")
	return org, ok && org != ""
}
