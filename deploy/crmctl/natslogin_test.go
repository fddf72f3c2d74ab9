package main

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/devpki"
	"github.com/crmslack/crmslack/libs/localnats"
	"github.com/crmslack/crmslack/libs/natsauth"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/topology"
)

// stackNATS is a server as a running stack leaves it for crmctl: a CRM
// user for each of orgs, and the streams the services ensure.
func stackNATS(t *testing.T, orgs ...string) *localnats.Server {
	t.Helper()
	testkit.PKI(t, orgs...)
	ns := testkit.NATS(t)
	b, err := bus.Connect(testkit.Context(t), bus.Config{URL: ns.ClientURL(), Name: "stack", NATSOptions: []nats.Option{testkit.NATSLogin(t)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if err := b.EnsureStreams(testkit.Context(t), topology.Streams(topology.StreamOptions{})...); err != nil {
		t.Fatal(err)
	}
	return ns
}

// TestLogsInAsWhoMayPublish: a CRM event goes as its org's CRM user, which
// may publish only that org's events; anything else as the operator.
func TestLogsInAsWhoMayPublish(t *testing.T) {
	t.Parallel()
	pki := testkit.PKI(t, "org1")
	if _, err := pki.NATSUsers("org1"); err != nil {
		t.Fatal(err)
	}
	p := newPublishers("nats://unused", pki.Path(), "test")
	for _, tc := range []struct{ subject, user string }{
		{topology.RecordUpserted("org1", "Leads"), natsauth.CRMUser("org1")},
		{topology.SalesSignal("org1", "call"), natsauth.CRMUser("org1")},
		{topology.Team("org1", "removed"), devpki.Toolbox},
	} {
		user, opts, err := p.login(tc.subject)
		if err != nil {
			t.Fatalf("%s: %v", tc.subject, err)
		}
		if user != tc.user || len(opts) == 0 {
			t.Errorf("%s: logs in as %q, want %q", tc.subject, user, tc.user)
		}
	}
	// An org the server has no CRM user for is named, not guessed.
	if _, _, err := p.login(topology.RecordUpserted("org2", "Leads")); err == nil || !strings.Contains(err.Error(), "crm-org2") {
		t.Errorf("an org without a CRM user: %v", err)
	}
}
