package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/crmslack/crmslack/libs/crmauth"
	"github.com/crmslack/crmslack/libs/identity"
	"github.com/crmslack/crmslack/libs/testkit"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"
)

// TestBotTokensOnlyToDelivery: the running registry hands a workspace's
// token to the delivery service's certificate and to no one else.
func TestBotTokensOnlyToDelivery(t *testing.T) {
	s := startStack(t, stackOptions{})
	ctx := testkit.Context(t)
	install(t, s, org, acme, "Acme Corp")
	req := &teamsv1.GetBotTokenRequest{OrgId: org, TeamId: acme}
	for _, name := range []string{identity.Gateway, identity.Query, identity.Sharing, identity.Teams, identity.CRM, "stranger"} {
		c := teamsv1.NewTeamRegistryServiceClient(testkit.DialAs(t, s.pki, name, identity.Teams, s.teamsAddr))
		var opts []grpc.CallOption
		if name == identity.CRM {
			opts = append(opts, testkit.CRMCall(t, s.pki, org, "ada@acme.example", crmauth.RoleAdmin))
		}
		if tok, err := c.GetBotToken(ctx, req, opts...); status.Code(err) != codes.PermissionDenied {
			t.Errorf("GetBotToken as %s: %v (token given: %t), want PermissionDenied", name, err, tok.GetBotToken() != "")
		}
	}
	// A certificate of another CA does not get past the handshake.
	other := teamsv1.NewTeamRegistryServiceClient(testkit.DialAs(t, testkit.OtherPKI(t), identity.Delivery, identity.Teams, s.teamsAddr))
	if _, err := other.GetBotToken(ctx, req); status.Code(err) != codes.Unavailable {
		t.Errorf("GetBotToken with another CA's delivery certificate: %v, want Unavailable", err)
	}
	delivery := teamsv1.NewTeamRegistryServiceClient(testkit.DialAs(t, s.pki, identity.Delivery, identity.Teams, s.teamsAddr))
	if tok, err := delivery.GetBotToken(ctx, req); err != nil || !strings.HasPrefix(tok.GetBotToken(), "xoxb-") {
		t.Fatalf("GetBotToken as delivery: %v", err)
	}
}

// TestAdminCallsNeedTheOrgsCredential: the CRM's admin calls go through
// only with a valid credential of an admin of the org, and the caller the
// registry acts for is the credential's, whatever the body says.
func TestAdminCallsNeedTheOrgsCredential(t *testing.T) {
	s := startStack(t, stackOptions{})
	ctx := testkit.Context(t)
	install(t, s, org, acme, "Acme Corp")
	if err := s.pki.EnsureCRMOrgs(org, "globex-crm"); err != nil {
		t.Fatal(err)
	}
	crm := teamsv1.NewTeamRegistryServiceClient(testkit.DialAs(t, s.pki, identity.CRM, identity.Teams, s.teamsAddr))
	key := func(o string) ed25519.PrivateKey {
		k, err := crmauth.ReadPrivateKey(s.pki.CRMKeyFile(o))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	_, forged, _ := ed25519.GenerateKey(rand.Reader)
	cred := func(k ed25519.PrivateKey, o, role string, at time.Time) grpc.CallOption {
		c := crmauth.Claims{Org: o, Email: "ada@acme.example", Role: role}
		c.Subject = "crm-admin-1"
		tok, err := crmauth.Sign(k, c, at, 2*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return grpc.PerRPCCredentials(crmauth.Bearer(tok))
	}
	now := time.Now()
	disable := &teamsv1.DisableIntegrationRequest{OrgId: org}
	for _, c := range []struct {
		name string
		req  *teamsv1.DisableIntegrationRequest
		opts []grpc.CallOption
		want codes.Code
	}{
		{"missing", disable, nil, codes.Unauthenticated},
		{"expired", disable, []grpc.CallOption{cred(key(org), org, crmauth.RoleAdmin, now.Add(-time.Hour))}, codes.Unauthenticated},
		{"forged", disable, []grpc.CallOption{cred(forged, org, crmauth.RoleAdmin, now)}, codes.Unauthenticated},
		{"another org's key", disable, []grpc.CallOption{cred(key("globex-crm"), org, crmauth.RoleAdmin, now)}, codes.Unauthenticated},
		{"another org's credential", disable, []grpc.CallOption{cred(key("globex-crm"), "globex-crm", crmauth.RoleAdmin, now)}, codes.PermissionDenied},
		{"a user's credential", disable, []grpc.CallOption{cred(key(org), org, crmauth.RoleUser, now)}, codes.PermissionDenied},
		{"body names another caller", &teamsv1.DisableIntegrationRequest{OrgId: org, Caller: &teamsv1.Caller{User: &commonv1.CrmUserRef{Id: "crm-admin-9"}, IsAdmin: true}},
			[]grpc.CallOption{cred(key(org), org, crmauth.RoleAdmin, now)}, codes.PermissionDenied},
		{"body says admin for a user", &teamsv1.DisableIntegrationRequest{OrgId: org, Caller: &teamsv1.Caller{IsAdmin: true}},
			[]grpc.CallOption{cred(key(org), org, crmauth.RoleUser, now)}, codes.PermissionDenied},
	} {
		if _, err := crm.DisableIntegration(ctx, c.req, c.opts...); status.Code(err) != c.want {
			t.Errorf("%s: %v, want %s", c.name, err, c.want)
		}
	}
	got, err := crm.GetIntegration(ctx, &teamsv1.GetIntegrationRequest{OrgId: org}, cred(key(org), org, crmauth.RoleUser, now))
	if err != nil || !got.GetEnabled() {
		t.Fatalf("after refused calls the integration is %v (%v), want still enabled", got, err)
	}
	if _, err := crm.DisableIntegration(ctx, disable, cred(key(org), org, crmauth.RoleAdmin, now)); err != nil {
		t.Fatalf("a valid admin credential: %v", err)
	}
	got, err = crm.GetIntegration(ctx, &teamsv1.GetIntegrationRequest{OrgId: org}, cred(key(org), org, crmauth.RoleUser, now))
	if err != nil || got.GetEnabled() {
		t.Fatalf("after a valid disable the integration is %v (%v)", got, err)
	}
}
