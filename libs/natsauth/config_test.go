package natsauth_test

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/crmslack/crmslack/libs/natsauth"
)

var update = flag.Bool("update", false, "rewrite deploy/nats/nats-server.conf")

// TestServerConfigIsCurrent: the production configuration is the table's,
// and nats-server accepts it.
func TestServerConfigIsCurrent(t *testing.T) {
	conf, err := natsauth.ServerConfig([]string{"example-org"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "..", "deploy", "nats", "nats-server.conf")
	head, err := os.ReadFile(filepath.Join("..", "..", "deploy", "nats", "server.conf.head"))
	if err != nil {
		t.Fatal(err)
	}
	want := string(head) + "\n" + conf
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatalf("%s is not the table's (go test ./libs/natsauth -run TestServerConfigIsCurrent -update)", path)
	}
	// nats-server accepts the table (the TLS block needs real files, so
	// only the generated part is loaded).
	for _, u := range append(slices.Clone(natsauth.Services), natsauth.CRMUser("example-org")) {
		t.Setenv(natsauth.PasswordVar(u), "x")
	}
	only := filepath.Join(t.TempDir(), "auth.conf")
	if err := os.WriteFile(only, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(only)
	if err != nil {
		t.Fatalf("nats-server refuses the authorization of %s: %v", path, err)
	}
	if len(opts.Users) != len(natsauth.Services)+1 {
		t.Fatalf("%d users in %s", len(opts.Users), path)
	}
}
