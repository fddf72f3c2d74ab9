package grpcapi_test

import (
	"context"
	"log/slog"
	"net"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/crmauth"
	"github.com/crmslack/crmslack/libs/devpki"
	"github.com/crmslack/crmslack/libs/identity"
	"github.com/crmslack/crmslack/libs/rpc"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	sharingv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/sharing/v1"

	"github.com/crmslack/crmslack/services/sharing/internal/app"
	"github.com/crmslack/crmslack/services/sharing/internal/grpcapi"
	"github.com/crmslack/crmslack/services/sharing/internal/mongorepo"
	"github.com/crmslack/crmslack/services/sharing/internal/share"
)

// The registry and the query service answer from memory here: the
// benchmark measures sharing itself (checks, card, share log, publish).
type benchAccess struct{}

func (benchAccess) Org(string) (share.Access, bool) {
	return share.Access{Enabled: true, Teams: []string{"T0ACME0001"}}, true
}
func (benchAccess) Synced() bool { return true }

type benchTeams struct{ dir share.Directory }

func (b benchTeams) MemberTeams(context.Context, string, string) ([]share.Team, error) {
	return []share.Team{{ID: "T0ACME0001"}}, nil
}
func (b benchTeams) Directory(context.Context, string, string) (share.Directory, error) {
	return b.dir, nil
}
func (benchTeams) SlackUser(context.Context, string, string) (app.SlackUser, error) {
	return app.SlackUser{}, nil
}

type benchRecords struct{ rec *crmv1.Record }

func (benchRecords) IsCrmUser(context.Context, string, string) (bool, error) { return true, nil }

func (b benchRecords) Record(context.Context, string, string, string) (*crmv1.Record, *crmv1.ModuleSchema, error) {
	return b.rec, &crmv1.ModuleSchema{Module: "Deals", SingularLabel: "Deal", DisplayField: "Deal_Name", HasCardView: true}, nil
}

// BenchmarkShareRecord: gRPC ShareRecord of a deal to three channels, to
// the commands stored in SLACK_OUT, with the share recorded in the
// embedded FerretDB (whose serialised inserts, ~3,000/s measured, bound
// it) or in production-like storage left out ("no-log", an upper bound).
func BenchmarkShareRecord(b *testing.B) {
	for _, withLog := range []bool{true, false} {
		name := "ferretdb-log"
		if !withLog {
			name = "no-log"
		}
		b.Run(name, func(b *testing.B) { benchmarkShareRecord(b, withLog) })
	}
}

type nopRepo struct{ app.Repo }

func (nopRepo) Create(context.Context, share.Share) (bool, error) { return true, nil }

func benchmarkShareRecord(b *testing.B, withLog bool) {
	ns := testkit.NATS(b)
	ctx := testkit.Context(b)
	bb, err := bus.Connect(ctx, bus.Config{URL: ns.ClientURL(), NATSOptions: []nats.Option{testkit.NATSLogin(b)}, Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = bb.Close() })
	for _, sc := range topology.Streams(topology.StreamOptions{Storage: jetstream.FileStorage}) {
		if sc.Name == topology.StreamSlackOut {
			if _, err := bb.EnsureStream(ctx, sc); err != nil {
				b.Fatal(err)
			}
		}
	}
	var repo app.Repo = nopRepo{}
	if withLog {
		st := testkit.Store(b, "sharing_bench")
		repo = mongorepo.New(st.DB())
	}
	dir := share.Directory{Team: "T0ACME0001", Users: []share.User{{ID: "U0ACMEANN1", Email: "ann@acme.test"}}}
	for _, id := range []string{"C0ACMEGNRL", "C0ACMESALE", "C0ACMEDESK"} {
		dir.Channels = append(dir.Channels, share.Channel{ID: id, Name: id, CanPost: true})
	}
	rec := &crmv1.Record{Module: "Deals", Id: "d1", Fields: map[string]*crmv1.FieldValue{
		"Deal_Name": {Kind: &crmv1.FieldValue_Text{Text: "Q4 licences"}},
		"Amount":    {Kind: &crmv1.FieldValue_Number{Number: 50000}},
		"Stage":     {Kind: &crmv1.FieldValue_Text{Text: "Negotiation"}},
	}}
	svc := app.New(app.Config{CRMBaseURL: "https://crm.example"}, benchAccess{}, benchTeams{dir}, benchRecords{rec}, bb, repo, slog.New(slog.DiscardHandler))
	pki := testkit.PKI(b, "o1")
	gs, err := rpc.NewServer(slog.New(slog.DiscardHandler), rpc.Security{Identity: testkit.Identity(b, pki, identity.Sharing), CRMKeys: crmKeys(b, pki)})
	if err != nil {
		b.Fatal(err)
	}
	grpcapi.Register(gs, grpcapi.New(svc))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = gs.Serve(lis) }()
	b.Cleanup(gs.Stop)
	// The CRM's calls, each with a credential of the sharer, as in production.
	client := sharingv1.NewSharingServiceClient(testkit.CRMConn(b, pki, identity.Sharing, lis.Addr().String()))
	req := &sharingv1.ShareRecordRequest{
		OrgId: "o1", Sharer: &commonv1.CrmUserRef{Id: "crm-ann", Name: "Ann", Email: "ann@acme.test"},
		Module: "Deals", RecordId: "d1", Message: "Can someone call them?", TeamId: "T0ACME0001",
		TargetKind: sharingv1.TargetKind_TARGET_KIND_CHANNELS, Targets: []string{"C0ACMEGNRL", "C0ACMESALE", "C0ACMEDESK"},
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := client.ShareRecord(ctx, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "shares/s")
	b.ReportMetric(float64(3*b.N)/b.Elapsed().Seconds(), "commands/s")
}

func crmKeys(b *testing.B, pki *devpki.Dir) *crmauth.Keys {
	b.Helper()
	k, err := crmauth.LoadKeys(pki.CRMKeysFile(), "CRM_KEYS_FILE")
	if err != nil {
		b.Fatal(err)
	}
	return k
}
