package query_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	queryv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/query/v1"
	slackv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/slack/v1"
	"github.com/crmslack/crmslack/services/query"
	"github.com/crmslack/crmslack/services/query/internal/render"
	"github.com/crmslack/crmslack/services/query/internal/seedset"
	"github.com/crmslack/crmslack/services/query/internal/snapshot"
)

// TestSeedExamplesAndRefusals feeds the seed data set through NATS, as the
// CRM publishes it, and runs every example of the seed's tables and every
// refusal of issue 5 over gRPC, checking the exact records returned.
func TestSeedExamplesAndRefusals(t *testing.T) {
	t.Parallel()
	ns := testkit.NATS(t)
	_, teamsAddr := startTeams(t)
	b := publisher(t, ns)
	in := startQuery(t, ns, teamsAddr)
	seed(t, b)
	waitSeeded(t, in)

	for _, ex := range seedset.Examples() {
		t.Run(ex.Text, func(t *testing.T) {
			t.Parallel()
			resp := run(t, in, userAda, strings.TrimPrefix(ex.Text, "/zcrm "))
			if got := ids(t, resp); !slices.Equal(got, ex.Want) || resp.GetTotal() != int64(ex.Total) {
				t.Fatalf("got %v (total %d), want %v (total %d)", got, resp.GetTotal(), ex.Want, ex.Total)
			}
			if resp.GetRefused() || resp.GetUnderstoodAs() == "" || resp.GetText() == "" {
				t.Errorf("refused %v, understood as %q, text %q", resp.GetRefused(), resp.GetUnderstoodAs(), resp.GetText())
			}
		})
	}
	for _, r := range seedset.Refusals() {
		t.Run("refusal/"+r.Name, func(t *testing.T) {
			t.Parallel()
			resp := run(t, in, userAda, r.Text)
			if !resp.GetRefused() || !strings.Contains(resp.GetText(), r.MessageContains) {
				t.Fatalf("refused %v, text %q; want a refusal containing %q", resp.GetRefused(), resp.GetText(), r.MessageContains)
			}
			if got := ids(t, resp); len(got) != 0 {
				t.Errorf("a refusal shows records %v", got)
			}
		})
	}
	t.Run("no match repeats the understanding", func(t *testing.T) {
		t.Parallel()
		resp := run(t, in, userAda, "leads [last name] starts with [zzz]")
		if resp.GetRefused() || resp.GetTotal() != 0 || resp.GetUnderstoodAs() != "Leads where (Last Name starts with zzz)" ||
			!strings.Contains(resp.GetText(), "Understood as: Leads where (Last Name starts with zzz)") {
			t.Fatalf("%v", resp)
		}
	})
	t.Run("help for anyone", func(t *testing.T) {
		t.Parallel()
		for _, text := range []string{"", "help", "/zcrm help"} {
			resp := run(t, in, userBob, text)
			if resp.GetRefused() || !strings.Contains(string(resp.GetBlocksJson()), "/zcrm leads [last name]=[watson]") {
				t.Fatalf("help %q: %v", text, resp)
			}
		}
	})
	t.Run("a team several orgs share is resolved through the registry", func(t *testing.T) {
		t.Parallel()
		ctx := testkit.Context(t)
		resp, err := in.client.RunSlashCommand(ctx, &queryv1.RunSlashCommandRequest{OrgId: "slack:" + team, TeamId: team, SlackUserId: userAda, Text: "deals [discount] >= [15]"})
		if err != nil || !slices.Equal(ids(t, resp), []string{"deal-02", "deal-04"}) {
			t.Fatalf("%v, %v", resp, err)
		}
	})
	t.Run("ready", func(t *testing.T) {
		t.Parallel()
		resp, err := http.Get("http://" + in.addrs.Ops + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/readyz: %s", resp.Status)
		}
	})
	t.Run("get record", func(t *testing.T) {
		t.Parallel()
		ctx := testkit.Context(t)
		resp, err := in.client.GetRecord(ctx, &queryv1.GetRecordRequest{OrgId: seedset.Org, Module: "Deals", RecordId: "deal-04"})
		if err != nil || resp.GetRecord().GetFields()["Deal_Name"].GetText() != "Delta expansion" || resp.GetSchema().GetModule() != "Deals" {
			t.Fatalf("%v, %v", resp, err)
		}
		_, err = in.client.GetRecord(ctx, &queryv1.GetRecordRequest{OrgId: "other-org", Module: "Deals", RecordId: "deal-04"})
		if status.Code(err) != codes.NotFound {
			t.Fatalf("another org's record: %v", err)
		}
		_, err = in.client.RunSlashCommand(ctx, &queryv1.RunSlashCommandRequest{OrgId: seedset.Org, Text: "leads"})
		if status.Code(err) != codes.InvalidArgument {
			t.Fatalf("no team or user: %v", err)
		}
	})
}

// TestOnlyCRMUsersSeeData: the caller must be an active CRM user of the org
// with the same email as their Slack account; anyone else sees no data.
func TestOnlyCRMUsersSeeData(t *testing.T) {
	t.Parallel()
	ns := testkit.NATS(t)
	_, teamsAddr := startTeams(t)
	b := publisher(t, ns)
	in := startQuery(t, ns, teamsAddr)
	seed(t, b)
	waitSeeded(t, in)

	for name, user := range map[string]string{
		"CRM user of another org": userBob,
		"deactivated CRM user":    userCid,
		"deleted Slack user":      userDee,
		"unknown Slack user":      "U0NOBODY",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			for _, text := range []string{"leads", "leads zylker", "leads [last nmae] is [x]", "deals [amount] < [20000]"} {
				resp := run(t, in, user, text)
				if !resp.GetRefused() || resp.GetText() != render.NotACRMUserMessage+"." || resp.GetTotal() != 0 ||
					len(ids(t, resp)) != 0 || strings.Contains(string(resp.GetBlocksJson()), "Zylker") || strings.Contains(string(resp.GetBlocksJson()), "Last Name") {
					t.Fatalf("%q: %v", text, resp)
				}
			}
		})
	}
	// A CRM user deactivated later loses access.
	if err := b.PublishBatch(testkit.Context(t), []bus.Published{deactivated(seedset.Org, "crm-ada", 2)}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, testkit.DefaultTimeout, func() bool { return run(t, in, userAda, "leads").GetRefused() }, "a deactivated CRM user still sees data")
}

// TestVersionsOutOfOrderAndDuplicates: events arrive twice and out of order;
// an older version never overwrites a newer one and a delete wins over an
// older upsert.
func TestVersionsOutOfOrderAndDuplicates(t *testing.T) {
	t.Parallel()
	ns := testkit.NATS(t)
	_, teamsAddr := startTeams(t)
	b := publisher(t, ns)
	in := startQuery(t, ns, teamsAddr)
	seed(t, b)
	waitSeeded(t, in)

	newer := upsert(seedset.Org, deal("x1", 3, "Omega three"))
	items := []bus.Published{
		newer,
		upsert(seedset.Org, deal("x1", 1, "Omega one")), // older, after the newer
		newer, // the same event again: dropped by the stream
		upsert(seedset.Org, deal("x1", 3, "Omega three")), // the same version, another event id
		upsert(seedset.Org, deal("x1", 2, "Omega two")),
		// x2: deleted, then an older upsert arrives late.
		upsert(seedset.Org, deal("x2", 1, "Sigma one")),
		del(seedset.Org, "Deals", "x2", 2),
		upsert(seedset.Org, deal("x2", 1, "Sigma one")),
		// x3: the delete arrives before any upsert.
		del(seedset.Org, "Deals", "x3", 5),
		upsert(seedset.Org, deal("x3", 4, "Tau four")),
		// x4: deleted, then changed again in the CRM (restored).
		del(seedset.Org, "Deals", "x4", 2),
		upsert(seedset.Org, deal("x4", 3, "Upsilon back")),
	}
	publishSettled(t, b, ns, in, items)
	check := func(in *instance) {
		t.Helper()
		if r := getRecord(t, in, "Deals", "x1"); r.GetVersion() != 3 || r.GetFields()["Deal_Name"].GetText() != "Omega three" {
			t.Errorf("x1 = %v, want version 3", r)
		}
		for _, id := range []string{"x2", "x3"} {
			if r := getRecord(t, in, "Deals", id); r != nil {
				t.Errorf("%s came back: %v", id, r)
			}
		}
		if r := getRecord(t, in, "Deals", "x4"); r.GetFields()["Deal_Name"].GetText() != "Upsilon back" {
			t.Errorf("x4 = %v, want it restored", r)
		}
		if got := ids(t, run(t, in, userAda, "deals omega")); !slices.Equal(got, []string{"x1"}) {
			t.Errorf("deals omega: %v", got)
		}
		if got := ids(t, run(t, in, userAda, "deals sigma")); len(got) != 0 {
			t.Errorf("deals sigma: %v", got)
		}
	}
	check(in)

	// The snapshot stream holds one message per record, the newest.
	js := testkit.JetStream(t, testkit.NATSConn(t, ns))
	st, err := js.Stream(testkit.Context(t), snapshot.StreamRecords)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := st.GetLastMsgForSubject(testkit.Context(t), snapshot.RecordSubject(seedset.Org, "Deals", "x1"))
	if err != nil || msg.Header.Get(snapshot.HeaderVersion) != "3" {
		t.Fatalf("x1 snapshot: %v, %v", msg, err)
	}
	info, err := st.Info(testkit.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(29 + 5 + 4); info.State.Msgs != want { // 29 seed records, x1..x4, marker, a schema per module
		t.Errorf("snapshot stream holds %d messages, want %d", info.State.Msgs, want)
	}
}

// TestImportedBatches: a batch of backfilled records is applied as their
// upserts would be: versions win over the batch (a record the CRM changed
// since, a seed record of the same version), the same batch again (a
// redelivery past the duplicate window, another event id) changes nothing,
// and a batch with a record of another module, or one that is no record,
// is refused whole. Each batch is stored as one snapshot.
func TestImportedBatches(t *testing.T) {
	t.Parallel()
	ns := testkit.NATS(t)
	_, teamsAddr := startTeams(t)
	b := publisher(t, ns)
	in := startQuery(t, ns, teamsAddr)
	seed(t, b)
	waitSeeded(t, in)

	seeded := seedset.Records()["Deals"][0]
	batch := []*crmv1.Record{
		deal("i1", 1, "Import one"),
		deal("i2", 1, "Import two"), // changed in the CRM before the batch lands
		deal("i3", 4, "Import four"),
		deal(seeded.GetId(), 1, "Import over a seed"),
	}
	items := []bus.Published{
		upsert(seedset.Org, deal("i2", 2, "Changed two")),
		imported(t, seedset.Org, "Deals", batch...),
		imported(t, seedset.Org, "Deals", batch...),
		imported(t, seedset.Org, "Deals", deal("bad1", 1, "Bad one"), &crmv1.Record{Module: "Leads", Id: "bad2", Version: 1}),
	}
	garbled := imported(t, seedset.Org, "Deals", deal("bad3", 1, "Bad three"))
	garbled.Event.(*crmv1.RecordsImported).Records = append(garbled.Event.(*crmv1.RecordsImported).Records, []byte{0x0a, 0x7f}) // a string longer than itself
	items = append(items, garbled)
	publishSettled(t, b, ns, in, items)

	for id, want := range map[string]string{"i1": "Import one", "i2": "Changed two", "i3": "Import four", seeded.GetId(): seeded.GetFields()["Deal_Name"].GetText()} {
		if got := getRecord(t, in, "Deals", id).GetFields()["Deal_Name"].GetText(); got != want {
			t.Errorf("%s = %q, want %q", id, got, want)
		}
	}
	for _, id := range []string{"bad1", "bad3"} {
		if r := getRecord(t, in, "Deals", id); r != nil {
			t.Errorf("a record of a refused batch was applied: %v", r)
		}
	}
	if got := ids(t, run(t, in, userAda, "deals import")); !slices.Equal(got, []string{"i1", "i3"}) && !slices.Equal(got, []string{"i3", "i1"}) {
		t.Errorf("deals import: %v", got)
	}
	js := testkit.JetStream(t, testkit.NATSConn(t, ns))
	st, err := js.Stream(testkit.Context(t), snapshot.StreamRecords)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(testkit.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	// Each batch is one message; only the record the CRM changed has its own.
	if want := uint64(29 + 2 + 1 + 1 + 4); info.State.Msgs != want { // 29 seed records, the batch twice, i2, marker, a schema per module
		t.Errorf("snapshot stream holds %d messages, want %d", info.State.Msgs, want)
	}
	first := items[1].Event.(*crmv1.RecordsImported).GetEnvelope().GetEventId()
	if _, err := st.GetLastMsgForSubject(testkit.Context(t), snapshot.ImportSubject(seedset.Org, "Deals", first)); err != nil {
		t.Errorf("the batch is not stored under its event id: %v", err)
	}
	if _, err := st.GetLastMsgForSubject(testkit.Context(t), snapshot.RecordSubject(seedset.Org, "Deals", "i1")); !errors.Is(err, jetstream.ErrMsgNotFound) {
		t.Errorf("an imported record has a snapshot of its own: %v", err)
	}
}

// TestRestartRebuildsFromSnapshots stops the service and starts it again on
// the same NATS with the CRM stream emptied: everything it answers then
// comes from the snapshot streams, deletes included.
func TestRestartRebuildsFromSnapshots(t *testing.T) {
	t.Parallel()
	ns := testkit.NATS(t)
	_, teamsAddr := startTeams(t)
	b := publisher(t, ns)
	first := startQuery(t, ns, teamsAddr)
	seed(t, b)
	waitSeeded(t, first)
	items := []bus.Published{
		del(seedset.Org, "Leads", "lead-01", 2),
		del(seedset.Org, "Accounts", "account-04", 2),
		upsert(seedset.Org, &crmv1.Record{Module: "Deals", Id: "deal-03", Version: 2, Fields: map[string]*crmv1.FieldValue{
			"Deal_Name": seedset.Text("Gamma pilot, renamed"), "Amount": seedset.Number(5000)}}),
		// An imported batch and the delete of one of its records, persisted
		// in either order: the tombstone wins, and stays (a batch is never
		// replaced, so a tombstone that expired would let the record back).
		imported(t, seedset.Org, "Deals", deal("imp-1", 1, "Imported one"), deal("imp-2", 1, "Imported two")),
		del(seedset.Org, "Deals", "imp-2", 2),
	}
	if err := b.PublishBatch(testkit.Context(t), items); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, testkit.DefaultTimeout, func() bool {
		return getRecord(t, first, "Leads", "lead-01") == nil && getRecord(t, first, "Accounts", "account-04") == nil &&
			getRecord(t, first, "Deals", "deal-03").GetVersion() == 2 && getRecord(t, first, "Deals", "imp-1") != nil
	})
	// Every event stored before the stop (the users' too, which the checks
	// above do not see), so the rebuild has them all.
	waitPersisted(t, ns)
	first.stop()

	// Empty the CRM stream: a rebuild that read it could not find anything.
	js := testkit.JetStream(t, testkit.NATSConn(t, ns))
	records, err := js.Stream(testkit.Context(t), snapshot.StreamRecords)
	if err != nil {
		t.Fatal(err)
	}
	tomb, err := records.GetLastMsgForSubject(testkit.Context(t), snapshot.RecordSubject(seedset.Org, "Deals", "imp-2"))
	if err != nil {
		t.Fatal(err)
	}
	if ttl := tomb.Header.Get(jetstream.MsgTTLHeader); ttl != "" {
		t.Errorf("a tombstone expires (Nats-TTL %s): an imported batch would bring its record back", ttl)
	}
	crm, err := js.Stream(testkit.Context(t), topology.StreamCRM)
	if err != nil {
		t.Fatal(err)
	}
	if err := crm.Purge(testkit.Context(t)); err != nil {
		t.Fatal(err)
	}

	second := startQuery(t, ns, teamsAddr)
	// Ready means rebuilt: no waiting.
	for _, ex := range []struct {
		text string
		want []string
	}{
		{"leads [last name]=[watson]", []string{"lead-07", "lead-02"}},
		{"accounts [email] contains [onc]", []string{"account-03", "account-01"}},
		{"deals renamed", []string{"deal-03"}},
		{"contacts [email opt out] is [true]", []string{"contact-01", "contact-03"}},
		{"deals imported", []string{"imp-1"}},
	} {
		if got := ids(t, run(t, second, userAda, ex.text)); !slices.Equal(got, ex.want) {
			t.Errorf("after restart, %q = %v, want %v", ex.text, got, ex.want)
		}
	}
	if got := run(t, second, userCid, "leads"); !got.GetRefused() {
		t.Error("after restart, a deactivated CRM user sees data")
	}
	// The tombstone survived: an older upsert of the deleted lead, arriving
	// now, stays out. Once the persister has handled it, a marker published
	// after comes after whatever it stored, and memory applies in order:
	// with the marker searchable, the old upsert has had its effect, if any.
	old := upsert(seedset.Org, seedset.Records()["Leads"][0])
	if _, err := b.Publish(testkit.Context(t), old.Subject, old.Event); err != nil {
		t.Fatal(err)
	}
	waitPersisted(t, ns)
	marker := upsert(seedset.Org, &crmv1.Record{Module: "Leads", Id: "marker", Version: 1, Fields: map[string]*crmv1.FieldValue{"Full_Name": seedset.Text("Marker")}})
	if _, err := b.Publish(testkit.Context(t), marker.Subject, marker.Event); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, testkit.DefaultTimeout, func() bool { return getRecord(t, second, "Leads", "marker") != nil })
	if r := getRecord(t, second, "Leads", "lead-01"); r != nil {
		t.Errorf("a deleted lead came back after restart: %v", r)
	}
}

// TestLateAnswersOncePerCommand: a command the gateway deferred is answered
// once through response_url; a command answered synchronously, or another
// app's command, is not answered again.
func TestLateAnswersOncePerCommand(t *testing.T) {
	t.Parallel()
	ns := testkit.NATS(t)
	_, teamsAddr := startTeams(t)
	b := publisher(t, ns)
	in := startQuery(t, ns, teamsAddr)
	seed(t, b)
	waitSeeded(t, in)

	cmd := func(id, command, text string, deferred bool) *slackv1.SlashCommandReceived {
		return &slackv1.SlashCommandReceived{
			Envelope: &commonv1.Envelope{EventId: id, OrgId: seedset.Org, OccurredAt: timestamppb.Now()},
			TeamId:   team, ChannelId: "C0SALES", UserId: userAda, Command: command, Text: text,
			ResponseUrl: "https://hooks.slack.test/commands/" + id, TriggerId: id, Deferred: deferred,
		}
	}
	deferred := cmd("slack-command:late-1", "/zcrm", "leads [last name]=[watson]", true)
	subject := topology.SlackCommand(team)
	ctx := testkit.Context(t)
	for _, ev := range []*slackv1.SlashCommandReceived{
		deferred,
		deferred, // a republish: dropped by the stream
		cmd("slack-command:sync-1", "/zcrm", "leads", false),
		cmd("slack-command:other-1", "/other", "leads", true),
		cmd("slack-command:late-nouser", "/zcrm", "leads", true),
		cmd("slack-command:expired", "/zcrm", "leads", true),
	} {
		switch ev.GetEnvelope().GetEventId() {
		case "slack-command:late-nouser":
			ev.UserId = userBob
		case "slack-command:expired":
			ev.Envelope.OccurredAt = timestamppb.New(time.Now().Add(-26 * time.Minute))
		}
		if _, err := b.Publish(ctx, subject, ev); err != nil {
			t.Fatal(err)
		}
	}
	// The same command delivered again past the stream's de-duplication
	// (as after a gateway retry beyond the window): raw, with a new msg id.
	raw, err := proto.Marshal(deferred)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(subject)
	m.Data = raw
	m.Header.Set(bus.HeaderType, string(deferred.ProtoReflect().Descriptor().FullName()))
	m.Header.Set(jetstream.MsgIDHeader, "another-msg-id")
	if _, err := b.JetStream().PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}

	js := testkit.JetStream(t, testkit.NATSConn(t, ns))
	out, err := js.Stream(ctx, topology.StreamSlackOut)
	if err != nil {
		t.Fatal(err)
	}
	// SLACK_OUT stores each command with its partition token appended.
	respond := topology.SlackOut(seedset.Org, team, "respond") + ".*"
	answered := func(info *jetstream.StreamInfo) (n uint64) {
		for _, c := range info.State.Subjects {
			n += c
		}
		return n
	}
	// Both late answers arrive; wait for the consumer to have seen every
	// command (including the duplicate) before counting.
	testkit.Eventually(t, testkit.DefaultTimeout, func() bool {
		info, err := out.Info(ctx, jetstream.WithSubjectFilter(respond))
		if err != nil || answered(info) < 2 {
			return false
		}
		ci, err := js.Consumer(ctx, topology.StreamSlackIn, "query-commands")
		return err == nil && ci.CachedInfo() != nil && consumerDone(ctx, ci)
	}, "late answers not published")
	info, err := out.Info(ctx, jetstream.WithSubjectFilter(respond))
	if err != nil {
		t.Fatal(err)
	}
	if n := answered(info); n != 2 {
		t.Fatalf("%d answers published, want 2 (one per deferred /zcrm command)", n)
	}
	answers := map[string]*slackv1.RespondToURL{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		msg, err := out.GetMsg(ctx, seq)
		if err != nil || !strings.HasPrefix(msg.Subject, strings.TrimSuffix(respond, "*")) {
			continue
		}
		var r slackv1.RespondToURL
		if err := proto.Unmarshal(msg.Data, &r); err != nil {
			t.Fatal(err)
		}
		answers[r.GetIdempotencyKey()] = &r
	}
	late := answers["slack-command:late-1"]
	if late == nil || late.GetResponseUrl() != deferred.GetResponseUrl() || late.GetTeamId() != team ||
		late.GetResponseType() != slackv1.ResponseType_RESPONSE_TYPE_EPHEMERAL || late.GetEnvelope().GetOrgId() != seedset.Org ||
		!strings.Contains(string(late.GetBlocksJson()), `lead-07`) || !strings.Contains(late.GetText(), "Understood as: Leads where (Last Name = watson)") {
		t.Fatalf("late answer: %v", late)
	}
	if !late.GetEnvelope().GetOccurredAt().AsTime().Equal(deferred.GetEnvelope().GetOccurredAt().AsTime()) {
		t.Error("the answer's occurred_at is not the command's (delivery dates the response_url from it)")
	}
	if nouser := answers["slack-command:late-nouser"]; nouser == nil || nouser.GetText() != render.NotACRMUserMessage+"." {
		t.Fatalf("late answer to a Slack user without a CRM user: %v", nouser)
	}
	// A command older than its response_url is dead-lettered, not answered.
	dlq, err := js.Stream(ctx, bus.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	dead, err := dlq.GetLastMsgForSubject(ctx, bus.DeadLetterSubject(topology.StreamSlackIn, "query-commands"))
	if err != nil || !strings.Contains(dead.Header.Get(bus.HeaderDLQReason), "response_url has expired") {
		t.Fatalf("expired command: %v, %v", dead, err)
	}
}

// consumerDone reports whether a consumer has acknowledged everything.
func consumerDone(ctx context.Context, c jetstream.Consumer) bool {
	info, err := c.Info(ctx)
	return err == nil && info.NumPending == 0 && info.NumAckPending == 0
}

func TestConfig(t *testing.T) {
	t.Parallel()
	cfg := query.ConfigFromEnv(envconfig.FromMap(map[string]string{"SHARE_BUTTON_KEY": strings.Repeat("k", 32)}))
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if cfg.GRPCAddr != "127.0.0.1:9103" || cfg.TeamsAddr != "127.0.0.1:9101" || !slices.Equal(cfg.SlashCommands, []string{"/zcrm"}) || cfg.CRMBaseURL != "" {
		t.Errorf("defaults: %+v", cfg)
	}
	l := envconfig.FromMap(map[string]string{
		"QUERY_GRPC_ADDR": "nope", "CRM_BASE_URL": "ftp://x", "QUERY_SLASH_COMMANDS": "zcrm, /ok",
		"NATS_REPLICAS": "9", "QUERY_SLACK_USER_TTL": "forever", "SHARE_BUTTON_KEY": "short",
	})
	cfg = query.ConfigFromEnv(l)
	err := cfg.Validate()
	all := strings.Join([]string{errString(l.Err()), errString(err)}, "\n")
	for _, want := range []string{"QUERY_GRPC_ADDR", "CRM_BASE_URL", "QUERY_SLASH_COMMANDS", "NATS_REPLICAS", "QUERY_SLACK_USER_TTL", "SHARE_BUTTON_KEY"} {
		if !strings.Contains(all, want) {
			t.Errorf("no problem reported for %s:\n%s", want, all)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := query.Run(ctx, query.Config{}, testkit.Logger(t), nil); err == nil || !strings.Contains(err.Error(), "NATS_URL") {
		t.Errorf("Run with an empty config: %v", err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
