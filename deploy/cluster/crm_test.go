package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/identity"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/natsauth"
	"github.com/crmslack/crmslack/libs/slackstandin"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/testkit/harness"
	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	remindersv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/reminders/v1"
	sharingv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/sharing/v1"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"
	workflowsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/workflows/v1"
)

// The stand-in's default seed: Acme, and Alice its admin.
const (
	org        = "acme"
	acme       = "T0ACME0001"
	aliceEmail = "alice@acme.example"
)

var admin = &teamsv1.Caller{User: &commonv1.CrmUserRef{Id: "crm-alice", Name: "Alice Johnson", Email: aliceEmail}, IsAdmin: true}

// install connects Acme's workspace to the org as an admin does.
func install(t *testing.T, c *Cluster) {
	t.Helper()
	harness.InstallThroughGateway(t, testkit.CRMConn(t, c.PKI(), identity.Teams, c.Addr(identity.Teams)), org, acme, admin)
}

// crm publishes as the org's CRM does: its own NATS user, which may publish
// only the org's events, through the product's publisher (event id as
// Nats-Msg-Id).
func crm(t *testing.T, c *Cluster) *bus.Bus {
	t.Helper()
	pw, err := c.PKI().NATSPassword(natsauth.CRMUser(org))
	if err != nil {
		t.Fatal(err)
	}
	withTLS, err := c.PKI().NATSTLS(natsauth.CRMUser(org))
	if err != nil {
		t.Fatal(err)
	}
	b, err := bus.Connect(longContext(t), bus.Config{URL: c.NATSURL(), Name: "cluster-test-crm",
		NATSOptions: []nats.Option{nats.UserInfo(natsauth.CRMUser(org), pw), withTLS, nats.CustomInboxPrefix(natsauth.CRMInbox(org))}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// publish publishes evs, retrying the whole batch until it is stored: a
// killed NATS node fails what was in flight, and a retry inside the
// stream's duplicate window stores nothing twice.
func publish(ctx context.Context, b *bus.Bus, evs []bus.Event) error {
	items := make([]bus.Published, len(evs))
	for i, ev := range evs {
		subject, err := topology.SubjectFor(ev)
		if err != nil {
			return err
		}
		items[i] = bus.Published{Subject: subject, Event: ev}
	}
	for {
		err := b.PublishBatch(ctx, items)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("publishing %d events: %w (last: %v)", len(evs), ctx.Err(), err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func envelope(id string) *commonv1.Envelope {
	return &commonv1.Envelope{EventId: id, OrgId: org, OccurredAt: nowPB(), SchemaVersion: 1, Producer: "cluster-test"}
}

func dealSchema() *crmv1.ModuleSchema {
	return &crmv1.ModuleSchema{Module: "Deals", SingularLabel: "Deal", PluralLabel: "Deals", DisplayField: "Deal_Name", HasCardView: true,
		Fields: []*crmv1.FieldMeta{
			{ApiName: "Deal_Name", Label: "Deal Name", Type: crmv1.FieldType_FIELD_TYPE_SINGLE_LINE},
			{ApiName: "Stage", Label: "Stage", Type: crmv1.FieldType_FIELD_TYPE_PICKLIST, PicklistValues: []string{"Qualification", "Closed Won"}},
			{ApiName: "Owner", Label: "Deal Owner", Type: crmv1.FieldType_FIELD_TYPE_OWNER},
		}}
}

func deal(id string, version int64) *crmv1.Record {
	return &crmv1.Record{Module: "Deals", Id: id, Version: version,
		Owner: &commonv1.CrmUserRef{Id: "crm-alice", Name: "Alice Johnson", Email: aliceEmail},
		Fields: map[string]*crmv1.FieldValue{
			"Deal_Name": {Kind: &crmv1.FieldValue_Text{Text: id}},
			"Stage":     {Kind: &crmv1.FieldValue_Text{Text: "Closed Won"}},
			"Owner":     {Kind: &crmv1.FieldValue_Lookup{Lookup: &crmv1.LookupValue{Id: "crm-alice", Name: "Alice Johnson"}}},
		}}
}

// The load: loadChannels channels in Acme with the bot in them, one
// workflow rule posting to each, and loadUsers people receiving missed
// calls, so that posts spread as a CRM's would and Slack's pace per channel
// (1/s, delivery's default) is kept.
const (
	loadChannels = 100
	loadUsers    = 50
)

func loadChannel(k int) string { return fmt.Sprintf("C0LOAD%04d", k) }
func loadUser(k int) string    { return fmt.Sprintf("U0LOAD%04d", k) }
func loadEmail(k int) string   { return fmt.Sprintf("load%04d@acme.example", k) }
func loadRule(k int) string    { return fmt.Sprintf("won-%03d", k) }

// loadSeed is the stand-in's default seed with the load's channels and
// people in Acme, written where the stand-in reads it.
func loadSeed(t *testing.T) string {
	t.Helper()
	seed := slackstandin.DefaultSeed()
	for i := range seed.Workspaces {
		w := &seed.Workspaces[i]
		if w.ID != acme {
			continue
		}
		for k := range loadUsers {
			w.Users = append(w.Users, slackstandin.User{ID: loadUser(k), Name: fmt.Sprintf("load%04d", k), RealName: fmt.Sprintf("Load %d", k), Email: loadEmail(k)})
		}
		for k := range loadChannels {
			w.Channels = append(w.Channels, slackstandin.Channel{ID: loadChannel(k), Name: fmt.Sprintf("load-%03d", k),
				Members: []string{w.Bot.UserID, "U0ACME0ALC"}, Creator: "U0ACME0ALC", Created: 1600000000})
		}
	}
	b, err := json.Marshal(seed)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "seed.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// actions seeds the Deals schema (workflows learns it from a record) and
// saves one action per rule.
func actions(t *testing.T, c *Cluster, b *bus.Bus) {
	t.Helper()
	ctx := testkit.Context(t)
	if err := publish(ctx, b, []bus.Event{&crmv1.RecordUpserted{Envelope: envelope("seed-deal"), Record: deal("seed", 1), Schema: dealSchema()}}); err != nil {
		t.Fatal(err)
	}
	wf := workflowsv1.NewWorkflowActionsServiceClient(testkit.CRMConn(t, c.PKI(), identity.Workflows, c.Addr(identity.Workflows)))
	testkit.Eventually(t, time.Minute, func() bool {
		_, err := wf.CreateAction(ctx, &workflowsv1.CreateActionRequest{OrgId: org, Caller: admin, Spec: &workflowsv1.ActionSpec{
			RuleId: "probe", Module: "Deals", Template: "#{Deals.NoSuchField}", TeamId: acme,
			TargetKind: workflowsv1.TargetKind_TARGET_KIND_CHANNELS, Targets: []string{loadChannel(0)}}})
		return status.Code(err) == codes.InvalidArgument
	}, "workflows knows the Deals schema and the org's team")
	for k := range loadChannels {
		if _, err := wf.CreateAction(testkit.Context(t), &workflowsv1.CreateActionRequest{OrgId: org, Caller: admin, Spec: &workflowsv1.ActionSpec{
			RuleId: loadRule(k), Module: "Deals", Template: "WF #{Deals.Deal Name}", TeamId: acme,
			TargetKind: workflowsv1.TargetKind_TARGET_KIND_CHANNELS, Targets: []string{loadChannel(k)}}}); err != nil {
			t.Fatalf("creating the action of %s: %v", loadRule(k), err)
		}
	}
}

// workload is n CRM events spread over the services' work, in publish
// order, and what each must post: a workflow trigger ("WF wf-…" in its
// rule's channel), a missed call ("Customer sg-…" to its owner), a record
// shared to a channel ("SH sh-…" in its card), a meeting whose reminder
// falls due ("Demo ac-…" to its owner), or a record update (query's and
// workflows' read models; nothing posted).
type workload struct {
	events []bus.Event
	// posts are the markers every post must carry once, with where: a
	// channel, or the user of a DM.
	posts map[string]string
}

func newWorkload(n int) workload {
	w := workload{posts: map[string]string{}}
	for i := range n {
		switch i % 5 {
		case 0, 1, 2:
			id := fmt.Sprintf("wf-%05d", i)
			k := (i/5*3 + i%5) % loadChannels
			w.events = append(w.events, &crmv1.WorkflowRuleTriggered{Envelope: envelope("ev-" + id), RuleId: loadRule(k), RuleName: loadRule(k),
				Trigger: crmv1.WorkflowTrigger_WORKFLOW_TRIGGER_FIELD_UPDATE, Record: deal(id, 1), Schema: dealSchema(),
				TriggeredBy: &commonv1.CrmUserRef{Id: "crm-alice", Name: "Alice Johnson", Email: aliceEmail}})
			w.posts["WF "+id] = loadChannel(k)
		case 3:
			id := fmt.Sprintf("sg-%05d", i)
			k := (i / 5) % loadUsers
			w.events = append(w.events, &crmv1.SalesSignal{Envelope: envelope("ev-" + id), SignalId: id,
				Channel: crmv1.SignalChannel_SIGNAL_CHANNEL_CALL, Kind: "missed",
				Record:      &commonv1.RecordRef{Module: "Contacts", Id: id, Name: "Customer " + id},
				RecordOwner: &commonv1.CrmUserRef{Id: "crm-" + loadUser(k), Name: fmt.Sprintf("Load %d", k), Email: loadEmail(k)},
				From:        "Customer " + id, FromPhone: "+1 555 0100", Summary: "missed call"})
			w.posts["Customer "+id] = loadUser(k)
		case 4:
			if (i/5)%4 == 0 {
				id := fmt.Sprintf("ac-%05d", i)
				k := (i / 20) % loadUsers
				owner := &commonv1.CrmUserRef{Id: "crm-" + loadUser(k), Name: fmt.Sprintf("Load %d", k), Email: loadEmail(k)}
				// StartAt is set as it is published (dueSoon).
				w.events = append(w.events, &crmv1.ActivityScheduled{Envelope: envelope("ev-" + id), Activity: &crmv1.Activity{
					Id: id, Kind: crmv1.ActivityKind_ACTIVITY_KIND_EVENT, Version: 1, Subject: "Demo " + id, TimeZone: "Europe/Paris",
					ReminderMinutesBefore: []int32{15}, Owner: owner, RelatedTo: &commonv1.RecordRef{Module: "Deals", Id: "rec-00001", Name: "rec-00001"},
				}})
				w.posts["Demo "+id] = loadUser(k)
				continue
			}
			if (i/5)%2 == 1 {
				id := fmt.Sprintf("sh-%05d", i)
				k := (i / 10) % loadChannels
				w.events = append(w.events, &sharingv1.ShareRecordRequested{Envelope: envelope("ev-" + id), Request: &sharingv1.ShareRecordRequest{
					OrgId: org, Sharer: admin.GetUser(), Module: "Deals", Record: deal(id, 1), Schema: dealSchema(), Message: "SH " + id,
					TeamId: acme, TargetKind: sharingv1.TargetKind_TARGET_KIND_CHANNELS, Targets: []string{loadChannel(k)}, RequestId: id,
				}})
				w.posts["SH "+id] = loadChannel(k)
				continue
			}
			id := fmt.Sprintf("rec-%05d", i%50)
			w.events = append(w.events, &crmv1.RecordUpserted{Envelope: envelope(fmt.Sprintf("ev-rec-%05d", i)), Record: deal(id, int64(i+1)), Schema: dealSchema()})
		}
	}
	return w
}

// reminderLead is how soon after its publication an activity's reminder is
// due: the reminders service keeps it as a JetStream message schedule.
const reminderLead = 20 * time.Second

// dueSoon sets each activity of evs to start so that its 15-minute
// reminder is due reminderLead from now.
func dueSoon(evs []bus.Event) {
	for _, ev := range evs {
		if a, ok := ev.(*crmv1.ActivityScheduled); ok {
			start := time.Now().Add(reminderLead + 15*time.Minute)
			a.Activity.StartAt, a.Activity.EndAt = timestamppb.New(start), timestamppb.New(start.Add(30*time.Minute))
		}
	}
}

// enableReminders turns reminders on for the load's people, as each would
// in the CRM.
func enableReminders(t *testing.T, c *Cluster) {
	t.Helper()
	prefs := remindersv1.NewReminderPreferencesServiceClient(testkit.CRMConn(t, c.PKI(), identity.Reminders, c.Addr(identity.Reminders)))
	for k := range loadUsers {
		if _, err := prefs.SetPreferences(testkit.Context(t), &remindersv1.SetPreferencesRequest{OrgId: org,
			User: &commonv1.CrmUserRef{Id: "crm-" + loadUser(k), Email: loadEmail(k)}, Enabled: true, TeamId: acme, TimeZone: "Europe/Paris"}); err != nil {
			t.Fatalf("reminders on for %s: %v", loadEmail(k), err)
		}
	}
}

// marker is the workload marker a post carries (in its text, or in its
// blocks for a shared card), or "".
func marker(m slackstandin.Message) string {
	for _, in := range []string{m.Text, string(m.Blocks)} {
		for _, p := range []string{"WF wf-", "Customer sg-", "SH sh-", "Demo ac-"} {
			if i := strings.Index(in, p); i >= 0 && len(in) >= i+len(p)+5 {
				return in[i : i+len(p)+5]
			}
		}
	}
	return ""
}
