// Command devpki writes a development PKI into a folder, as `make run` does
// under .local/pki: a CA, a certificate and key for every service, for the
// NATS server ("nats"), the console and the CRM's connector ("crm"), and a CRM signing
// key per org with the key registry crm-keys.json. docker-compose.yml runs
// it once before the stack starts. Existing material is kept (certificates
// are renewed within a week of their end), so running it again is harmless.
//
//	devpki -dir /pki -orgs acme,globex
//
// It is for development and trials: a production deployment takes its
// certificates from its own CA (docs/security.md).
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/crmslack/crmslack/libs/devpki"
	"github.com/crmslack/crmslack/libs/identity"
)

// NATSServer is the NATS server's identity (deploy/nats/nats-server.conf).
const NATSServer = "nats"

func main() {
	dir := flag.String("dir", "/pki", "folder to write the PKI into")
	orgs := flag.String("orgs", os.Getenv("LOCAL_CRM_ORGS"), "comma-separated CRM orgs to make signing keys for (default $LOCAL_CRM_ORGS)")
	flag.Parse()
	if err := write(*dir, strings.Split(*orgs, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "devpki:", err)
		os.Exit(1)
	}
	fmt.Println("devpki: development PKI in", *dir)
}

func write(dir string, orgs []string) error {
	d, err := devpki.Open(dir)
	if err != nil {
		return err
	}
	for _, name := range append([]string{identity.CRM, identity.Console, NATSServer}, identity.Services...) {
		if _, err := d.Trust(name); err != nil {
			return err
		}
	}
	var keep []string
	for _, o := range orgs {
		if o = strings.TrimSpace(o); o != "" {
			keep = append(keep, o)
		}
	}
	return d.EnsureCRMOrgs(keep...)
}
