package query_test

import (
	"context"
	"encoding/json"
	"fmt"
	"google.golang.org/protobuf/proto"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/card"
	"github.com/crmslack/crmslack/libs/identity"
	"github.com/crmslack/crmslack/libs/localnats"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/testkit/harness"
	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	queryv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/query/v1"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"
	"github.com/crmslack/crmslack/services/query"
	"github.com/crmslack/crmslack/services/query/internal/feed"
	"github.com/crmslack/crmslack/services/query/internal/seedset"
)

// The Slack side of the tests: one workspace owned by the seed org, with a
// CRM user (Ada), a Slack user without a CRM user (Bob), a Slack user the
// CRM knows but who was deactivated in the CRM (Cid), and one deleted in
// Slack (Dee).
const (
	team    = "T0SEED0001"
	userAda = "U0ADA"
	userBob = "U0BOB"
	userCid = "U0CID"
	userDee = "U0DEE"
)

// fakeTeams is the team registry as the query service sees it: an in-test
// gRPC server with GetSlackUser and ResolveTeam.
type fakeTeams struct {
	teamsv1.UnimplementedTeamRegistryServiceServer
	mu    sync.Mutex
	users map[[2]string]*teamsv1.GetSlackUserResponse
	orgs  map[string][]string
	calls int
}

func (f *fakeTeams) GetSlackUser(_ context.Context, req *teamsv1.GetSlackUserRequest) (*teamsv1.GetSlackUserResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	u, ok := f.users[[2]string{req.GetTeamId(), req.GetUserId()}]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no user %s in %s", req.GetUserId(), req.GetTeamId())
	}
	return u, nil
}

func (f *fakeTeams) ResolveTeam(_ context.Context, req *teamsv1.ResolveTeamRequest) (*teamsv1.ResolveTeamResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &teamsv1.ResolveTeamResponse{OrgIds: f.orgs[req.GetTeamId()], IntegrationEnabled: true}, nil
}

// startTeams serves the fake registry on loopback and returns its address.
func startTeams(t testing.TB) (*fakeTeams, string) {
	t.Helper()
	f := &fakeTeams{
		users: map[[2]string]*teamsv1.GetSlackUserResponse{
			{team, userAda}: {Email: "Ada@Zylker.test", RealName: "Ada Admin"},
			{team, userBob}: {Email: "bob@elsewhere.test", RealName: "Bob"},
			{team, userCid}: {Email: "cid@zylker.test", RealName: "Cid"},
			{team, userDee}: {Email: "dee@zylker.test", RealName: "Dee", Deleted: true},
		},
		orgs: map[string][]string{team: {seedset.Org}},
	}
	return f, testkit.GRPCServer(t, identity.Teams, func(s *grpc.Server) { teamsv1.RegisterTeamRegistryServiceServer(s, f) })
}

// instance is one running query service.
type instance struct {
	client queryv1.QueryServiceClient
	addrs  query.Addrs
	stop   func()
}

// startQuery runs query.Run against the NATS server and the registry until
// the test ends or stop is called, and waits until it is ready.
func startQuery(t testing.TB, ns *localnats.Server, teamsAddr string) *instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan query.Addrs, 1)
	done := make(chan error, 1)
	cfg := query.Config{
		Connections: harness.Connections(t, testkit.PKI(t), identity.Query, ns.ClientURL(), ""),
		TeamsAddr:   teamsAddr, CRMBaseURL: "https://crm.example",
		SlashCommands: []string{"/zcrm"}, SlackUserTTL: time.Minute, ShareButtonKey: shareButtonKey,
		Ready: func(a query.Addrs) { ready <- a },
	}
	log := testkit.Logger(t)
	if _, ok := t.(*testing.B); ok {
		log = slog.New(slog.DiscardHandler) // a benchmark's log would hold every call
	}
	go func() { done <- query.Run(ctx, cfg, log, prometheus.NewRegistry()) }()
	var addrs query.Addrs
	select {
	case addrs = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("query stopped before it was ready: %v", err)
	case <-time.After(testkit.DefaultTimeout):
		cancel()
		t.Fatal("query not ready in time")
	}
	// Each call as a caller the authorization table allows.
	cc := testkit.AllowedConn(t, testkit.PKI(t), addrs.GRPC)
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("query stopped with %v", err)
				}
			case <-time.After(testkit.DefaultTimeout):
				t.Error("query did not stop in time")
			}
		})
	}
	t.Cleanup(stop)
	return &instance{client: queryv1.NewQueryServiceClient(cc), addrs: addrs, stop: stop}
}

// publisher is the tests' own connection to the bus, standing in for the
// CRM and the gateway.
func publisher(t testing.TB, ns *localnats.Server) *bus.Bus {
	t.Helper()
	return harness.Bus(t, ns.ClientURL(), "test-publisher", testkit.Logger(t))
}

var eventSeq struct {
	sync.Mutex
	n int
}

func env(org string) *commonv1.Envelope {
	eventSeq.Lock()
	eventSeq.n++
	n := eventSeq.n
	eventSeq.Unlock()
	return &commonv1.Envelope{EventId: fmt.Sprintf("test-%d-%d", time.Now().UnixNano(), n), OrgId: org, OccurredAt: timestamppb.Now()}
}

func upsert(org string, rec *crmv1.Record) bus.Published {
	ev := &crmv1.RecordUpserted{Envelope: env(org), Record: rec, Schema: seedset.Schemas()[rec.GetModule()]}
	return bus.Published{Subject: topology.RecordUpserted(org, rec.GetModule()), Event: ev}
}

// imported is a batch of backfilled records of module, as crmctl import
// publishes them.
func imported(t testing.TB, org, module string, recs ...*crmv1.Record) bus.Published {
	t.Helper()
	ev := &crmv1.RecordsImported{Envelope: env(org), Schema: seedset.Schemas()[module]}
	for _, r := range recs {
		data, err := proto.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		ev.Records = append(ev.Records, data)
	}
	return bus.Published{Subject: topology.RecordsImported(org, module), Event: ev}
}

func del(org, module, id string, version int64) bus.Published {
	ev := &crmv1.RecordDeleted{Envelope: env(org), Module: module, RecordId: id, Version: version}
	return bus.Published{Subject: topology.RecordDeleted(org, module), Event: ev}
}

func crmUser(org, id, email string, version int64) bus.Published {
	ev := &crmv1.CrmUserUpserted{Envelope: env(org), User: &crmv1.CrmUser{Id: id, Email: email, FullName: id, Active: true, Version: version}}
	return bus.Published{Subject: topology.CrmUser(org, "upserted"), Event: ev}
}

func deactivated(org, id string, version int64) bus.Published {
	ev := &crmv1.CrmUserDeactivated{Envelope: env(org), UserId: id, Version: version}
	return bus.Published{Subject: topology.CrmUser(org, "deactivated"), Event: ev}
}

// seed publishes the CRM users and every seed record, as the CRM would.
func seed(t testing.TB, b *bus.Bus) {
	t.Helper()
	items := []bus.Published{
		crmUser(seedset.Org, "crm-ada", "ada@zylker.test", 1),
		crmUser(seedset.Org, "crm-cid", "cid@zylker.test", 1),
		deactivated(seedset.Org, "crm-cid", 2),
		crmUser(seedset.Org, "crm-dee", "dee@zylker.test", 1),
		crmUser("other-org", "crm-bob", "bob@elsewhere.test", 1),
	}
	for _, recs := range seedset.Records() {
		for _, r := range recs {
			items = append(items, upsert(seedset.Org, r))
		}
	}
	if err := b.PublishBatch(testkit.Context(t), items); err != nil {
		t.Fatal(err)
	}
}

// run asks the service as a Slack user.
func run(t testing.TB, in *instance, user, text string) *queryv1.RunSlashCommandResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(testkit.Context(t), 5*time.Second)
	defer cancel()
	resp, err := in.client.RunSlashCommand(ctx, &queryv1.RunSlashCommandRequest{
		OrgId: seedset.Org, TeamId: team, ChannelId: "C0SALES", SlackUserId: user, Text: text,
	})
	if err != nil {
		t.Fatalf("RunSlashCommand(%q): %v", text, err)
	}
	return resp
}

// ids reads the records an answer shows, in order, from the share buttons.
func ids(t testing.TB, resp *queryv1.RunSlashCommandResponse) []string {
	t.Helper()
	var blocks []struct {
		Type     string `json:"type"`
		Elements []struct {
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
		} `json:"elements"`
	}
	if err := json.Unmarshal(resp.GetBlocksJson(), &blocks); err != nil {
		t.Fatalf("blocks: %v", err)
	}
	var out []string
	for _, b := range blocks {
		for _, e := range b.Elements {
			if e.ActionID == card.ShareActionID {
				ref, err := shareButtons(t).Read(e.Value)
				if err != nil {
					t.Fatal(err)
				}
				if ref.Org != seedset.Org {
					t.Errorf("share button of another org: %+v", ref)
				}
				out = append(out, ref.ID)
			}
		}
	}
	return out
}

// waitSeeded waits until every seed record is searchable.
func waitSeeded(t testing.TB, in *instance) {
	t.Helper()
	want := map[string]int64{}
	for module, recs := range seedset.Records() {
		want[module] = int64(len(recs))
	}
	testkit.Eventually(t, testkit.DefaultTimeout, func() bool {
		for module, n := range want {
			if run(t, in, userAda, module).GetTotal() != n {
				return false
			}
		}
		return true
	}, "seed records not all searchable")
}

// getRecord returns a record, or nil when the projection has none.
func getRecord(t testing.TB, in *instance, module, id string) *crmv1.Record {
	t.Helper()
	resp, err := in.client.GetRecord(testkit.Context(t), &queryv1.GetRecordRequest{OrgId: seedset.Org, Module: module, RecordId: id})
	if status.Code(err) == codes.NotFound {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetRecord()
}

// shareButtonKey is SHARE_BUTTON_KEY in tests.
const shareButtonKey = "test-share-button-key-0123456789abcdef"

// shareButtons reads the Share buttons the service signs.
func shareButtons(t testing.TB) *card.Buttons {
	t.Helper()
	b, err := card.NewButtons(nil, []byte(shareButtonKey))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// deal is a deal record of the given id, version and name.
func deal(id string, v int64, name string) *crmv1.Record {
	return &crmv1.Record{Module: "Deals", Id: id, Version: v, Fields: map[string]*crmv1.FieldValue{"Deal_Name": seedset.Text(name), "Amount": seedset.Number(1)}}
}

// publishSettled publishes items and returns once in can search all of
// them. The persister handles upserts many at a time and deletes and
// imports on durables of their own, so the order it stores them in is not
// the order of items (the end state is, whatever the order). Only once
// every event is stored does a marker come after all of them in the
// snapshot stream, which memory applies in order: once the marker is
// searchable, so is the rest.
func publishSettled(t testing.TB, b *bus.Bus, ns *localnats.Server, in *instance, items []bus.Published) {
	t.Helper()
	for _, it := range items {
		if _, err := b.Publish(testkit.Context(t), it.Subject, it.Event); err != nil {
			t.Fatal(err)
		}
	}
	waitPersisted(t, ns)
	marker := upsert(seedset.Org, deal("marker", 1, "Marker"))
	if _, err := b.Publish(testkit.Context(t), marker.Subject, marker.Event); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, testkit.DefaultTimeout, func() bool { return getRecord(t, in, "Deals", "marker") != nil })
}

// waitPersisted waits until the persister's durables on the CRM stream
// have every event published so far handled and acknowledged, so every
// one is stored in the snapshot streams. A marker published after that is
// stored after all of them; one published before may well not be, since
// upserts are handled many at a time and deletes by a durable of their own.
func waitPersisted(t testing.TB, ns *localnats.Server) {
	t.Helper()
	js := testkit.JetStream(t, testkit.NATSConn(t, ns))
	testkit.Eventually(t, testkit.DefaultTimeout, func() bool {
		for _, d := range []string{feed.DurableRecordsUpserted, feed.DurableRecordsDeleted, feed.DurableRecordsImported, feed.DurableUsersUpserted, feed.DurableUsersDeactivate} {
			c, err := js.Consumer(testkit.Context(t), topology.StreamCRM, d)
			if err != nil {
				return false
			}
			info, err := c.Info(testkit.Context(t))
			if err != nil || info.NumPending != 0 || info.NumAckPending != 0 {
				return false
			}
		}
		return true
	}, "the persister has not stored every event")
}
