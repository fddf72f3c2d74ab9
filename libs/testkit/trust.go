package testkit

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"

	"github.com/crmslack/crmslack/libs/crmauth"
	"github.com/crmslack/crmslack/libs/devpki"
	"github.com/crmslack/crmslack/libs/identity"
	"github.com/crmslack/crmslack/libs/mtls"
	"github.com/crmslack/crmslack/libs/rpc"
	"github.com/crmslack/crmslack/libs/trust"
)

// pkis is each running test's development CA, so that NATS, the services'
// trust files and the test's own clients of one test agree without being
// handed the CA. Entries go at the test's cleanup.
var pkis sync.Map // testing.TB → *devpki.Dir

// PKI is the test's development CA (one per test, made on first use, in a
// temporary directory) with a CRM signing key for each of orgs: every test
// runs with mutual TLS, NATS users and real CRM credentials, never an
// insecure mode.
func PKI(t testing.TB, orgs ...string) *devpki.Dir {
	t.Helper()
	d, ok := pkis.Load(t)
	if !ok {
		d = OtherPKI(t)
		pkis.Store(t, d)
		t.Cleanup(func() { pkis.Delete(t) })
	}
	dir := d.(*devpki.Dir)
	if err := dir.EnsureCRMOrgs(orgs...); err != nil {
		t.Fatalf("testkit: %v", err)
	}
	return dir
}

// OtherPKI is a development CA of its own, not the test's: for checking that
// another CA's certificates are refused.
func OtherPKI(t testing.TB) *devpki.Dir {
	t.Helper()
	d, err := devpki.Open(t.TempDir())
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	if err := d.EnsureCRMOrgs(); err != nil {
		t.Fatalf("testkit: %v", err)
	}
	return d
}

// NATSLogin logs a test's own NATS connection in as the development
// toolbox user, which may do anything (services log in as themselves), over
// TLS with the toolbox's certificate, as every client of NATS must.
func NATSLogin(t testing.TB) nats.Option {
	t.Helper()
	pw, err := PKI(t).NATSPassword(devpki.Toolbox)
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	return NATSAs(t, PKI(t), devpki.Toolbox, pw)
}

// NATSAs logs a NATS connection in as user with password pw, over TLS with
// identity user's certificate of pki (the CRM's, identity.CRM, for a CRM
// org's user).
func NATSAs(t testing.TB, pki *devpki.Dir, user, pw string) nats.Option {
	t.Helper()
	withTLS, err := pki.NATSTLS(user)
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	return func(o *nats.Options) error {
		if err := nats.UserInfo(user, pw)(o); err != nil {
			return err
		}
		return withTLS(o)
	}
}

// TrustFiles are identity name's trust files in pki, for a service's Config.
func TrustFiles(t testing.TB, pki *devpki.Dir, name string) trust.Files {
	t.Helper()
	f, err := pki.Trust(name)
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	return f
}

// Identity is identity name's loaded TLS identity, for a test's own clients.
func Identity(t testing.TB, pki *devpki.Dir, name string) *mtls.Identity {
	t.Helper()
	id, err := TrustFiles(t, pki, name).Identity()
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	return id
}

// DialAs connects to server (its identity) at target over mutual TLS as
// identity name (a service, or identity.CRM for the CRM), closed at cleanup.
func DialAs(t testing.TB, pki *devpki.Dir, name, server, target string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	cc, err := rpc.Dial(target, server, Identity(t, pki, name), opts...)
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// CRMToken signs a fresh five-minute CRM credential for a user of org (whose
// key pki holds) with role crmauth.RoleUser or crmauth.RoleAdmin; the user's
// id is their email's local part.
func CRMToken(t testing.TB, pki *devpki.Dir, org, email, role string) string {
	t.Helper()
	key, err := crmauth.ReadPrivateKey(pki.CRMKeyFile(org))
	if err != nil {
		t.Fatalf("testkit: CRM key of %s (give the org to testkit.PKI): %v", org, err)
	}
	id, _, _ := strings.Cut(email, "@")
	c := crmauth.Claims{Org: org, Email: email, Role: role}
	c.Subject = id
	tok, err := crmauth.Sign(key, c, time.Now(), 5*time.Minute)
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	return tok
}

// CRMCall is the call option carrying a CRM credential (see CRMToken).
func CRMCall(t testing.TB, pki *devpki.Dir, org, email, role string) grpc.CallOption {
	t.Helper()
	return grpc.PerRPCCredentials(crmauth.Bearer(CRMToken(t, pki, org, email, role)))
}

// CRMConn connects to server (its identity) at target as the CRM, each call
// carrying a credential signed for its request's org and acting user
// (devpki.CRMSigner), as the CRM's connector would; closed at cleanup.
func CRMConn(t testing.TB, pki *devpki.Dir, server, target string) *grpc.ClientConn {
	t.Helper()
	return DialAs(t, pki, identity.CRM, server, target, grpc.WithChainUnaryInterceptor(devpki.NewCRMSigner(pki).Interceptor()))
}

// AllowedConn connects to target and makes each call as a caller the
// authorization table (rpc.Callers) allows for its method: the first
// service of its row, else the CRM with a signed credential (CRMConn). Tests
// that exercise a service's API use it; tests of refusals dial one identity
// with Dial.
func AllowedConn(t testing.TB, pki *devpki.Dir, target string) grpc.ClientConnInterface {
	t.Helper()
	return &allowedConn{t: t, pki: pki, target: target, conns: map[string]*grpc.ClientConn{}}
}

type allowedConn struct {
	t      testing.TB
	pki    *devpki.Dir
	target string
	mu     sync.Mutex
	conns  map[string]*grpc.ClientConn
}

func (a *allowedConn) conn(method string) (*grpc.ClientConn, error) {
	rule, ok := rpc.Callers[method]
	if !ok {
		return nil, fmt.Errorf("testkit: %s has no row in rpc.Callers", method)
	}
	name := identity.CRM
	if len(rule.Services) > 0 {
		name = rule.Services[0]
	} else if rule.AnyService {
		name = identity.Gateway
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if cc, ok := a.conns[name]; ok {
		return cc, nil
	}
	server := rpc.ServerOf(method)
	if server == "" {
		return nil, fmt.Errorf("testkit: %s is served by every service; dial one with DialAs", method)
	}
	var cc *grpc.ClientConn
	if name == identity.CRM {
		cc = CRMConn(a.t, a.pki, server, a.target)
	} else {
		cc = DialAs(a.t, a.pki, name, server, a.target)
	}
	a.conns[name] = cc
	return cc, nil
}

func (a *allowedConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	cc, err := a.conn(method)
	if err != nil {
		return err
	}
	return cc.Invoke(ctx, method, args, reply, opts...)
}

func (a *allowedConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	cc, err := a.conn(method)
	if err != nil {
		return nil, err
	}
	return cc.NewStream(ctx, desc, method, opts...)
}

// Dial connects to a service of the test (served on PKI(t)), each call as
// a caller the authorization table allows (AllowedConn).
func Dial(t testing.TB, target string) grpc.ClientConnInterface {
	t.Helper()
	return AllowedConn(t, PKI(t), target)
}

// natsServerTLS is the TLS of the test's NATS server (devpki.NATSServerTLS).
func natsServerTLS(t testing.TB) *tls.Config {
	t.Helper()
	c, err := PKI(t).NATSServerTLS()
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	return c
}
