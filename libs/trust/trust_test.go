package trust_test

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/crmslack/crmslack/libs/identity"
	"github.com/crmslack/crmslack/libs/localnats"
	"github.com/crmslack/crmslack/libs/testkit"
)

// TestNATSOverTLS: a service logs in to a server that demands TLS with its
// certificate and password; a certificate of another CA does not get in.
func TestNATSOverTLS(t *testing.T) {
	t.Parallel()
	pki := testkit.PKI(t)
	users, err := pki.NATSUsers()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := localnats.Start(localnats.Options{StoreDir: t.TempDir(), Users: users, TLS: testkit.Identity(t, pki, "nats").ServerConfig()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)

	loaded, err := testkit.TrustFiles(t, pki, identity.Teams).Load(false, true)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.ClientURL(), loaded.NATS...)
	if err != nil {
		t.Fatalf("teams over TLS: %v", err)
	}
	if !nc.TLSRequired() {
		t.Error("the connection is not over TLS")
	}
	nc.Close()

	other, err := testkit.TrustFiles(t, testkit.OtherPKI(t), identity.Teams).Load(false, true)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := pki.NATSPassword(identity.Teams)
	if nc, err := nats.Connect(srv.ClientURL(), append(other.NATS, nats.UserInfo(identity.Teams, pw))...); err == nil {
		nc.Close()
		t.Fatal("a certificate of another CA got in")
	}
}

// TestNATSAlwaysOverTLS: every server is reached over TLS only, whatever it
// offers and wherever it is; loopback is no exception.
func TestNATSAlwaysOverTLS(t *testing.T) {
	t.Parallel()
	loaded, err := testkit.TrustFiles(t, testkit.PKI(t), identity.Teams).Load(false, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, url := range []string{
		"nats://nats:4222",
		"nats://10.0.0.7:4222",
		"nats://127.0.0.1:4222",
		"nats://localhost:4222",
		"nats://127.0.0.1:4222,nats://nats:4222",
	} {
		o := nats.GetDefaultOptions()
		o.Servers = strings.Split(url, ",")
		for _, opt := range loaded.NATS {
			if err := opt(&o); err != nil {
				t.Fatal(err)
			}
		}
		if !o.Secure || o.TLSConfig == nil {
			t.Errorf("%s: secure %v, TLS config %v; want TLS", url, o.Secure, o.TLSConfig != nil)
		}
	}
}
