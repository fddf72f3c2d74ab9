package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/crmslack/crmslack/libs/devpki"
	"github.com/crmslack/crmslack/libs/rpc"
	"github.com/crmslack/crmslack/libs/trust"
)

// devPKI opens (making on the first run) the development trust material in
// the data folder: the CA, the CRM's certificate for crmctl, and a CRM
// signing key and a NATS user (crm-<org>) for each of orgs. Services'
// certificates and NATS passwords are made as they start. Nothing here is
// in the repository.
func devPKI(dataDir string, orgs []string) (*devpki.Dir, error) {
	d, err := devpki.Open(filepath.Join(dataDir, "pki"))
	if err != nil {
		return nil, err
	}
	if _, err := d.Trust(rpc.CRM); err != nil {
		return nil, err
	}
	if err := d.EnsureCRMOrgs(orgs...); err != nil {
		return nil, fmt.Errorf("LOCAL_CRM_ORGS: %w", err)
	}
	return d, nil
}

// splitOrgs parses LOCAL_CRM_ORGS.
func splitOrgs(list string) []string {
	var orgs []string
	for _, o := range strings.Split(list, ",") {
		if o = strings.TrimSpace(o); o != "" {
			orgs = append(orgs, o)
		}
	}
	return orgs
}

// withTrust is vars with a service's own trust files: in one process every
// service reads the same variables, each with its own identity.
func withTrust(vars map[string]string, f trust.Files) map[string]string {
	out := make(map[string]string, len(vars)+4)
	for k, v := range vars {
		out[k] = v
	}
	for _, kv := range f.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = v
	}
	return out
}

// consoleDevKeys is CONSOLE_DEV_CRM_KEYS for the local stack: the console's
// development sign-in signs with the orgs' development CRM keys, as crmctl
// does.
func consoleDevKeys(pki *devpki.Dir, orgs []string) string {
	pairs := make([]string, 0, len(orgs))
	for _, o := range orgs {
		pairs = append(pairs, o+"="+pki.CRMKeyFile(o))
	}
	return strings.Join(pairs, ",")
}
