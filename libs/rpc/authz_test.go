package rpc_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/crmslack/crmslack/libs/crmauth"
	"github.com/crmslack/crmslack/libs/devpki"
	"github.com/crmslack/crmslack/libs/identity"
	"github.com/crmslack/crmslack/libs/rpc"
	"github.com/crmslack/crmslack/libs/testkit"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	deliveryv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/delivery/v1"
	queryv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/query/v1"
	remindersv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/reminders/v1"
	sharingv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/sharing/v1"
	signalsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/signals/v1"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"
	workflowsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/workflows/v1"
)

// identities are every caller the table knows, plus one it does not.
var identities = []string{identity.Teams, identity.Gateway, identity.Delivery, identity.Query, identity.Sharing, identity.Workflows, identity.Signals, identity.Reminders, identity.Console, identity.CRM, "stranger"}

// services are every gRPC service of crmslack with a do-nothing
// implementation: a call that passes authorization reaches it and answers
// Unimplemented; one that does not is refused before.
var services = []struct {
	desc *grpc.ServiceDesc
	impl any
}{
	{&teamsv1.TeamRegistryService_ServiceDesc, teamsv1.UnimplementedTeamRegistryServiceServer{}},
	{&queryv1.QueryService_ServiceDesc, queryv1.UnimplementedQueryServiceServer{}},
	{&sharingv1.SharingService_ServiceDesc, sharingv1.UnimplementedSharingServiceServer{}},
	{&deliveryv1.DeliveryAuditService_ServiceDesc, deliveryv1.UnimplementedDeliveryAuditServiceServer{}},
	{&deliveryv1.DeadLetterService_ServiceDesc, deliveryv1.UnimplementedDeadLetterServiceServer{}},
	{&workflowsv1.WorkflowActionsService_ServiceDesc, workflowsv1.UnimplementedWorkflowActionsServiceServer{}},
	{&signalsv1.SalesSignalsSettingsService_ServiceDesc, signalsv1.UnimplementedSalesSignalsSettingsServiceServer{}},
	{&remindersv1.ReminderPreferencesService_ServiceDesc, remindersv1.UnimplementedReminderPreferencesServiceServer{}},
}

// serveAll serves every service with the real table, mutual TLS and CRM
// keys from pki, and returns its address.
func serveAll(t *testing.T, pki *devpki.Dir, reg prometheus.Registerer, extra ...func(*grpc.Server)) string {
	t.Helper()
	files := testkit.TrustFiles(t, pki, "server")
	id, err := files.Identity()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := files.CRMKeys()
	if err != nil {
		t.Fatal(err)
	}
	s, err := rpc.NewServer(testkit.Logger(t), rpc.Security{Identity: id, CRMKeys: keys, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range services {
		s.RegisterService(svc.desc, svc.impl)
	}
	for _, f := range extra {
		f(s.Server)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

// request is an empty request of method, with org_id set when it has one.
func request(t *testing.T, md protoreflect.MethodDescriptor, org string) (proto.Message, proto.Message) {
	t.Helper()
	in, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
	if err != nil {
		t.Fatal(err)
	}
	out, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
	if err != nil {
		t.Fatal(err)
	}
	req := in.New()
	if fd := req.Descriptor().Fields().ByName("org_id"); fd != nil {
		req.Set(fd, protoreflect.ValueOfString(org))
	}
	return req.Interface(), out.New().Interface()
}

// TestEveryMethodOnlyItsCallers calls every method of every service as no
// one (no client certificate), as every identity, and as the CRM with a
// valid admin credential: only the callers of the method's row get through.
func TestEveryMethodOnlyItsCallers(t *testing.T) {
	t.Parallel()
	pki := testkit.PKI(t, "o1")
	addr := serveAll(t, pki, nil)
	ctx := testkit.Context(t)
	conns := map[string]*grpc.ClientConn{}
	for _, name := range identities {
		conns[name] = testkit.DialAs(t, pki, name, "server", addr)
	}
	// A client of another CA: its certificate is refused at the handshake.
	other := testkit.DialAs(t, testkit.OtherPKI(t), identity.Delivery, "server", addr)
	admin := testkit.CRMCall(t, pki, "o1", "ann@o1.example", crmauth.RoleAdmin)

	for _, svc := range services {
		sd, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svc.desc.ServiceName))
		if err != nil {
			t.Fatal(err)
		}
		methods := sd.(protoreflect.ServiceDescriptor).Methods()
		for i := range methods.Len() {
			md := methods.Get(i)
			full := "/" + svc.desc.ServiceName + "/" + string(md.Name())
			rule := rpc.Callers[full]
			t.Run(full, func(t *testing.T) {
				t.Parallel()
				req, resp := request(t, md, "o1")
				if err := other.Invoke(ctx, full, req, resp); status.Code(err) != codes.Unavailable {
					t.Errorf("a certificate of another CA: %v, want the handshake refused (Unavailable)", err)
				}
				for _, name := range identities {
					var opts []grpc.CallOption
					if name == identity.CRM || name == identity.Console {
						opts = append(opts, admin)
					}
					err := conns[name].Invoke(ctx, full, req, resp, opts...)
					forCRM := name == identity.CRM || slices.Contains(rule.ForCRM, name)
					allowed := slices.Contains(rule.Services, name) || (forCRM && rule.CRM != rpc.CRMNone)
					want := codes.PermissionDenied
					if allowed {
						want = codes.Unimplemented // reached the service
					}
					if got := status.Code(err); got != want {
						t.Errorf("as %s: %v, want %s", name, err, want)
					}
				}
			})
		}
	}
}

// TestNoClientCertificateIsRefused: a TLS client without a certificate
// never gets a call through.
func TestNoClientCertificateIsRefused(t *testing.T) {
	t.Parallel()
	pki := testkit.PKI(t)
	addr := serveAll(t, pki, nil)
	id := testkit.Identity(t, pki, identity.Delivery)
	cfg := id.ClientConfig("server")
	cfg.GetClientCertificate = nil
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	_, err = teamsv1.NewTeamRegistryServiceClient(cc).GetBotToken(testkit.Context(t), &teamsv1.GetBotTokenRequest{OrgId: "o1", TeamId: "T1"})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("GetBotToken without a client certificate: %v, want the handshake refused", err)
	}
}

// TestEveryMethodHasARule: every rpc in proto/ has a row, and every row
// names a method that exists, so a new service cannot forget its rows.
func TestEveryMethodHasARule(t *testing.T) {
	t.Parallel()
	protoFiles, err := filepath.Glob(filepath.Join("..", "..", "proto", "crmslack", "*", "v1", "*.proto"))
	if err != nil || len(protoFiles) == 0 {
		t.Fatalf("no proto files found (%v)", err)
	}
	pkgRE := regexp.MustCompile(`(?m)^package\s+([\w.]+);`)
	svcRE := regexp.MustCompile(`(?s)\bservice\s+(\w+)\s*\{(.*?)\n\}`)
	rpcRE := regexp.MustCompile(`\brpc\s+(\w+)\s*\(`)
	inProto := map[string]bool{}
	for _, f := range protoFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pkg := pkgRE.FindSubmatch(b)
		for _, svc := range svcRE.FindAllSubmatch(b, -1) {
			for _, m := range rpcRE.FindAllSubmatch(svc[2], -1) {
				inProto["/"+string(pkg[1])+"."+string(svc[1])+"/"+string(m[1])] = true
			}
		}
	}
	for m := range inProto {
		if _, ok := rpc.Callers[m]; !ok {
			t.Errorf("%s has no row in rpc.Callers (libs/rpc/callers.go): everyone is refused", m)
		}
	}
	for m := range rpc.Callers {
		if strings.HasPrefix(m, "/crmslack.") && !inProto[m] {
			t.Errorf("rpc.Callers has a row for %s, which no proto declares", m)
		}
	}
}

// recorder is a team registry that keeps the admin request it got.
type recorder struct {
	teamsv1.UnimplementedTeamRegistryServiceServer
	got chan *teamsv1.RemoveTeamRequest
}

func (r *recorder) RemoveTeam(_ context.Context, req *teamsv1.RemoveTeamRequest) (*teamsv1.RemoveTeamResponse, error) {
	r.got <- req
	return &teamsv1.RemoveTeamResponse{}, nil
}

// TestCRMCredential: an admin call of the CRM, or of the console acting for
// a CRM user, goes through only with a valid credential of an admin of the
// request's org, and the caller it carries is the credential's.
func TestCRMCredential(t *testing.T) {
	t.Parallel()
	pki := testkit.PKI(t, "o1", "o2")
	reg := prometheus.NewRegistry()
	rec := &recorder{got: make(chan *teamsv1.RemoveTeamRequest, 1)}
	files := testkit.TrustFiles(t, pki, identity.Teams)
	id, _ := files.Identity()
	keys, err := files.CRMKeys()
	if err != nil {
		t.Fatal(err)
	}
	s, err := rpc.NewServer(testkit.Logger(t), rpc.Security{Identity: id, CRMKeys: keys, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	teamsv1.RegisterTeamRegistryServiceServer(s.Server, rec)
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	ctx := testkit.Context(t)

	key, err := crmauth.ReadPrivateKey(pki.CRMKeyFile("o1"))
	if err != nil {
		t.Fatal(err)
	}
	_, forger, _ := ed25519.GenerateKey(rand.Reader)
	claims := func(org, role string) crmauth.Claims {
		c := crmauth.Claims{Org: org, Email: "ann@o1.example", Name: "Ann", Role: role}
		c.Subject = "u-ann"
		return c
	}
	sign := func(k ed25519.PrivateKey, c crmauth.Claims, at time.Time, ttl time.Duration) grpc.CallOption {
		tok, err := crmauth.Sign(k, c, at, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return grpc.PerRPCCredentials(crmauth.Bearer(tok))
	}
	now := time.Now()
	valid := sign(key, claims("o1", crmauth.RoleAdmin), now, 2*time.Minute)
	ann := &commonv1.CrmUserRef{Id: "u-ann"}
	cases := []struct {
		name string
		req  *teamsv1.RemoveTeamRequest
		opts []grpc.CallOption
		want codes.Code
	}{
		{"missing", &teamsv1.RemoveTeamRequest{OrgId: "o1", TeamId: "T1"}, nil, codes.Unauthenticated},
		{"expired", &teamsv1.RemoveTeamRequest{OrgId: "o1", TeamId: "T1"}, []grpc.CallOption{sign(key, claims("o1", crmauth.RoleAdmin), now.Add(-time.Hour), 5*time.Minute)}, codes.Unauthenticated},
		{"forged", &teamsv1.RemoveTeamRequest{OrgId: "o1", TeamId: "T1"}, []grpc.CallOption{sign(forger, claims("o1", crmauth.RoleAdmin), now, time.Minute)}, codes.Unauthenticated},
		{"o2's key claiming o1", &teamsv1.RemoveTeamRequest{OrgId: "o1", TeamId: "T1"}, []grpc.CallOption{sign(mustKey(t, pki, "o2"), claims("o1", crmauth.RoleAdmin), now, time.Minute)}, codes.Unauthenticated},
		{"o2's credential for o1's team", &teamsv1.RemoveTeamRequest{OrgId: "o1", TeamId: "T1"}, []grpc.CallOption{sign(mustKey(t, pki, "o2"), claims("o2", crmauth.RoleAdmin), now, time.Minute)}, codes.PermissionDenied},
		{"a user, not an admin", &teamsv1.RemoveTeamRequest{OrgId: "o1", TeamId: "T1"}, []grpc.CallOption{sign(key, claims("o1", crmauth.RoleUser), now, time.Minute)}, codes.PermissionDenied},
		{"body claims admin for a user", &teamsv1.RemoveTeamRequest{OrgId: "o1", TeamId: "T1", Caller: &teamsv1.Caller{IsAdmin: true}}, []grpc.CallOption{sign(key, claims("o1", crmauth.RoleUser), now, time.Minute)}, codes.PermissionDenied},
		{"body names another caller", &teamsv1.RemoveTeamRequest{OrgId: "o1", TeamId: "T1", Caller: &teamsv1.Caller{User: &commonv1.CrmUserRef{Id: "u-bob"}, IsAdmin: true}}, []grpc.CallOption{valid}, codes.PermissionDenied},
		{"too long-lived", &teamsv1.RemoveTeamRequest{OrgId: "o1", TeamId: "T1"}, []grpc.CallOption{grpc.PerRPCCredentials(crmauth.Bearer(longLived(t, key)))}, codes.Unauthenticated},
		{"valid, caller left out", &teamsv1.RemoveTeamRequest{OrgId: "o1", TeamId: "T1"}, []grpc.CallOption{valid}, codes.OK},
		{"valid, caller agrees", &teamsv1.RemoveTeamRequest{OrgId: "o1", TeamId: "T1", Caller: &teamsv1.Caller{User: ann, IsAdmin: true}}, []grpc.CallOption{valid}, codes.OK},
	}
	for _, as := range []string{identity.CRM, identity.Console} {
		client := teamsv1.NewTeamRegistryServiceClient(testkit.DialAs(t, pki, as, identity.Teams, lis.Addr().String()))
		for _, c := range cases {
			_, err := client.RemoveTeam(ctx, proto.Clone(c.req).(*teamsv1.RemoveTeamRequest), c.opts...)
			if got := status.Code(err); got != c.want {
				t.Errorf("as %s, %s: %v, want %s", as, c.name, err, c.want)
				continue
			}
			if c.want != codes.OK {
				continue
			}
			got := <-rec.got
			want := &teamsv1.RemoveTeamRequest{OrgId: "o1", TeamId: "T1", Caller: &teamsv1.Caller{
				User: &commonv1.CrmUserRef{Id: "u-ann", Email: "ann@o1.example", Name: "Ann"}, IsAdmin: true}}
			if !proto.Equal(want, got) {
				t.Errorf("as %s, %s: the service got %v, want it bound to the credential: %v", as, c.name, got, want)
			}
		}
	}
	if n := testutil.CollectAndCount(reg, "crmslack_rpc_refused_total"); n == 0 {
		t.Error("refusals were not counted")
	}
}

func mustKey(t *testing.T, pki *devpki.Dir, org string) ed25519.PrivateKey {
	t.Helper()
	k, err := crmauth.ReadPrivateKey(pki.CRMKeyFile(org))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// longLived is a credential valid for a day, which Sign would not make.
func longLived(t *testing.T, key ed25519.PrivateKey) string {
	t.Helper()
	c := crmauth.Claims{Org: "o1", Role: crmauth.RoleAdmin}
	c.Subject, c.Audience = "u-ann", jwt.ClaimStrings{crmauth.Audience}
	c.IssuedAt, c.ExpiresAt = jwt.NewNumericDate(time.Now()), jwt.NewNumericDate(time.Now().Add(24*time.Hour))
	tk := jwt.NewWithClaims(jwt.SigningMethodEdDSA, &c)
	tk.Header["kid"] = crmauth.KeyID(key.Public().(ed25519.PublicKey))
	tok, err := tk.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestServerOfEveryMethod: every crmslack method of the authorization table
// is served by a named identity, the one its proto package is named for.
func TestServerOfEveryMethod(t *testing.T) {
	t.Parallel()
	known := map[string]bool{identity.Teams: true, identity.Delivery: true, identity.Query: true, identity.Reminders: true,
		identity.Sharing: true, identity.Signals: true, identity.Workflows: true}
	for method := range rpc.Callers {
		if strings.HasPrefix(method, "/grpc.") { // health, reflection: served by every service
			if got := rpc.ServerOf(method); got != "" {
				t.Errorf("ServerOf(%s) = %q, want none", method, got)
			}
			continue
		}
		if got := rpc.ServerOf(method); !known[got] {
			t.Errorf("ServerOf(%s) = %q, not a service", method, got)
		}
	}
	if got := rpc.ServerOf(teamsv1.TeamRegistryService_GetTeam_FullMethodName); got != identity.Teams {
		t.Errorf("GetTeam is served by %q", got)
	}
}
