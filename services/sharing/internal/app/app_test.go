package app_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"image/png"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/card"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	integrationv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/integration/v1"
	sharingv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/sharing/v1"
	slackv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/slack/v1"

	"github.com/crmslack/crmslack/services/sharing/internal/app"
	"github.com/crmslack/crmslack/services/sharing/internal/share"
)

// texts gathers every string of a Block Kit JSON document (texts, URLs,
// action ids), one per line, unescaped from JSON.
func texts(t *testing.T, raw []byte) string {
	t.Helper()
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("blocks are not JSON: %v", err)
	}
	var b strings.Builder
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			b.WriteString(v + "\n")
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(doc)
	return b.String()
}

var sharer = &commonv1.CrmUserRef{Id: "crm-ann", Name: "Ann Archer", Email: ann}

func recordRequest(kind sharingv1.TargetKind, targets ...string) *sharingv1.ShareRecordRequest {
	return &sharingv1.ShareRecordRequest{
		OrgId: org, Sharer: sharer, Module: "Deals", RecordId: "d1", Message: "Can someone <!here> call them?",
		TeamId: acme, TargetKind: kind, Targets: targets,
	}
}

func channels(targets ...string) *sharingv1.ShareRecordRequest {
	return recordRequest(sharingv1.TargetKind_TARGET_KIND_CHANNELS, targets...)
}

func TestShareRecordPostsOneCardPerTarget(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := testkit.Context(t)
	req := recordRequest(sharingv1.TargetKind_TARGET_KIND_CHANNELS, general, sales, general)
	res, err := f.svc.ShareRecord(ctx, req, share.ViaGRPC, "")
	if err != nil {
		t.Fatal(err)
	}
	items := f.pub.published()
	if len(items) != 2 || len(res.CommandIDs) != 2 {
		t.Fatalf("%d commands published, %d returned; want one per distinct target", len(items), len(res.CommandIDs))
	}
	for i, want := range []string{general, sales} {
		it := items[i]
		pm, ok := it.Event.(*slackv1.PostMessage)
		if !ok || it.Subject != topology.SlackOut(org, acme, "post") {
			t.Fatalf("item %d: %T on %s", i, it.Event, it.Subject)
		}
		if pm.GetTarget().GetChannelId() != want || pm.GetTeamId() != acme {
			t.Errorf("item %d goes to %v in %s", i, pm.GetTarget(), pm.GetTeamId())
		}
		if pm.GetEnvelope().GetEventId() != res.CommandIDs[i] || pm.GetIdempotencyKey() != res.CommandIDs[i] || pm.GetEnvelope().GetOrgId() != org {
			t.Errorf("item %d: event %s key %s org %s, want the command id %s", i, pm.GetEnvelope().GetEventId(), pm.GetIdempotencyKey(), pm.GetEnvelope().GetOrgId(), res.CommandIDs[i])
		}
		if o := pm.GetOrigin(); o.GetService() != app.Producer || o.GetPurpose() != app.PurposeRecord || o.GetOnBehalfOf().GetId() != "crm-ann" {
			t.Errorf("origin %v", o)
		}
		blocks := texts(t, pm.GetBlocksJson())
		for _, s := range []string{"Can someone &lt;!here&gt; call them?", "Q4 licences", "EUR 50,000.00", "Negotiation", "Shared by <@" + annID + ">", "https://crm.example/Deals/d1"} {
			if !strings.Contains(blocks, s) {
				t.Errorf("card lacks %q: %s", s, blocks)
			}
		}
		if !strings.Contains(pm.GetText(), "Q4 licences") {
			t.Errorf("fallback text %q", pm.GetText())
		}
	}
	all := f.repo.all()
	if len(all) != 1 || all[0].ID != res.ShareID || all[0].What != "Deals d1 · Q4 licences" || !slices.Equal(all[0].Commands, res.CommandIDs) ||
		all[0].Sharer.Email != ann || all[0].Via != share.ViaGRPC || all[0].Refused {
		t.Errorf("recorded %+v", all)
	}
}

func TestShareRecordToPeopleByDM(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	req := recordRequest(sharingv1.TargetKind_TARGET_KIND_USERS, bobID)
	req.Record, req.Schema, req.RecordId = deal(), dealSchema(), "" // a snapshot: no lookup
	f.records.recs = nil
	if _, err := f.svc.ShareRecord(testkit.Context(t), req, share.ViaGRPC, ""); err != nil {
		t.Fatal(err)
	}
	items := f.pub.published()
	if len(items) != 1 || items[0].Event.(*slackv1.PostMessage).GetTarget().GetSlackUserId() != bobID {
		t.Fatalf("published %v", items)
	}
}

// TestRetriedShareSendsTheSameCommands: a request id makes a retry the
// same share with the same command ids (which the stream and the egress
// drop), and reusing it for another share is refused.
func TestRetriedShareSendsTheSameCommands(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := testkit.Context(t)
	req := channels(general)
	req.RequestId = "crm-req-1"
	f.pub.failing = true
	if _, err := f.svc.ShareRecord(ctx, req, share.ViaGRPC, ""); !errors.Is(err, share.ErrUnavailable) {
		t.Fatalf("publish failure: %v, want unavailable", err)
	}
	f.pub.failing = false
	first, err := f.svc.ShareRecord(ctx, req, share.ViaGRPC, "")
	if err != nil {
		t.Fatal(err)
	}
	second, err := f.svc.ShareRecord(ctx, req, share.ViaGRPC, "")
	if err != nil {
		t.Fatal(err)
	}
	if first.ShareID != second.ShareID || !slices.Equal(first.CommandIDs, second.CommandIDs) {
		t.Errorf("a retry gave %v then %v", first, second)
	}
	if n := len(f.pub.published()); n != 1 {
		t.Errorf("%d distinct commands, want 1", n)
	}
	if n := len(f.repo.all()); n != 1 {
		t.Errorf("%d shares recorded, want 1", n)
	}
	// The unsent attempt is forgotten once the command is delivered.
	if err := f.svc.HandleDeliverySucceeded(ctx, &integrationv1.DeliverySucceeded{
		Envelope: &commonv1.Envelope{EventId: "out-1", OrgId: org}, CommandId: first.CommandIDs[0], Origin: "sharing/share_record",
	}); err != nil {
		t.Fatal(err)
	}
	list, _, err := f.svc.ListShares(ctx, app.SharesQuery{Org: org})
	if err != nil || len(list) != 1 || list[0].Outcome != share.OutcomeDelivered {
		t.Fatalf("after delivery: %+v %v", list, err)
	}
	other := channels(sales)
	other.RequestId = "crm-req-1"
	if _, err := f.svc.ShareRecord(ctx, other, share.ViaGRPC, ""); !errors.Is(err, share.ErrConflict) {
		t.Errorf("request id reused for another share: %v, want conflict", err)
	}
}

// TestShareRefusals: each rule refuses with its kind and a reason, before
// anything is published, and the refusal is recorded.
func TestShareRefusals(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		prepare func(*fixture)
		req     func() *sharingv1.ShareRecordRequest
		want    error
		msg     string
		logged  bool
	}{
		{"org disabled", func(f *fixture) { f.access.set(org, share.Access{Teams: []string{acme}}) },
			func() *sharingv1.ShareRecordRequest { return channels(general) }, share.ErrPrecondition, "disabled", true},
		{"org never set up", func(f *fixture) { f.access.orgs = map[string]share.Access{} },
			func() *sharingv1.ShareRecordRequest { return channels(general) }, share.ErrPrecondition, "no Slack integration", true},
		{"team removed", func(f *fixture) { f.access.set(org, share.Access{Enabled: true, Teams: []string{globex}}) },
			func() *sharingv1.ShareRecordRequest { return channels(general) }, share.ErrNotFound, "not an active team", true},
		{"sharer not in the team", nil, func() *sharingv1.ShareRecordRequest {
			r := channels(deals)
			r.TeamId = globex
			return r
		}, share.ErrDenied, "ann@acme.test is not a member of Slack team " + globex, true},
		{"channel of another team", nil, func() *sharingv1.ShareRecordRequest { return channels(general, deals) }, share.ErrDenied, deals + `" is not a channel of Slack team ` + acme, true},
		{"person of another team", nil, func() *sharingv1.ShareRecordRequest {
			return recordRequest(sharingv1.TargetKind_TARGET_KIND_USERS, "U0GLBXHNK1")
		}, share.ErrDenied, "not an active person", true},
		{"channel the app is not in", nil, func() *sharingv1.ShareRecordRequest { return channels(random) }, share.ErrPrecondition, "invite it", true},
		{"record unknown", nil, func() *sharingv1.ShareRecordRequest {
			r := channels(general)
			r.RecordId = "d404"
			return r
		}, share.ErrNotFound, "no record", true},
		{"no targets", nil, func() *sharingv1.ShareRecordRequest { return channels() }, share.ErrInvalid, "at least one", true},
		{"no target kind", nil, func() *sharingv1.ShareRecordRequest { return recordRequest(0, general) }, share.ErrInvalid, "target_kind", true},
		{"no sharer email", nil, func() *sharingv1.ShareRecordRequest {
			r := channels(general)
			r.Sharer = &commonv1.CrmUserRef{Id: "crm-ann"}
			return r
		}, share.ErrInvalid, "sharer.email", true},
		{"snapshot of another module", nil, func() *sharingv1.ShareRecordRequest {
			r := channels(general)
			r.Module = "Leads"
			r.Record = deal()
			return r
		}, share.ErrInvalid, "module", true},
		{"module without a card view", nil, func() *sharingv1.ShareRecordRequest {
			r := channels(general)
			r.Record, r.RecordId, r.Schema = deal(), "", dealSchema()
			r.Schema.HasCardView = false
			return r
		}, share.ErrPrecondition, "no business card view", true},
		{"bad org id", nil, func() *sharingv1.ShareRecordRequest {
			r := channels(general)
			r.OrgId = "a.b"
			return r
		}, share.ErrInvalid, "org_id", false},
		{"registry down", func(f *fixture) { f.teams.err = share.Errorf(share.ErrUnavailable, "registry down") },
			func() *sharingv1.ShareRecordRequest { return channels(general) }, share.ErrUnavailable, "registry down", false},
		{"access not loaded", func(f *fixture) { f.access.synced = false },
			func() *sharingv1.ShareRecordRequest { return channels(general) }, share.ErrUnavailable, "not loaded", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			if c.prepare != nil {
				c.prepare(f)
			}
			_, err := f.svc.ShareRecord(testkit.Context(t), c.req(), share.ViaGRPC, "")
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v, want %v containing %q", err, c.want, c.msg)
			}
			if n := len(f.pub.published()); n != 0 {
				t.Errorf("%d commands published for a refused share", n)
			}
			recorded := f.repo.all()
			if c.logged != (len(recorded) == 1) || c.logged && (!recorded[0].Refused || recorded[0].Reason != err.Error()) {
				t.Errorf("recorded %+v (want a refusal recorded: %v)", recorded, c.logged)
			}
		})
	}
}

func chartRequest() *sharingv1.ShareChartRequest {
	return &sharingv1.ShareChartRequest{
		OrgId: org, Sharer: sharer, ReportName: "Pipeline by stage", Message: "Numbers for Monday & more",
		TeamId: acme, TargetKind: sharingv1.TargetKind_TARGET_KIND_CHANNELS, Targets: []string{general, sales},
		Chart: &sharingv1.Chart{
			Type: sharingv1.ChartType_CHART_TYPE_COLUMN, Title: "Pipeline", Categories: []string{"Won", "Lost"},
			Series: []*sharingv1.Series{{Name: "Deals", Values: []float64{3, 1}}}, WidthPx: 640, HeightPx: 360,
		},
	}
}

func TestShareChartUploadsOnePNGToEveryTarget(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	res, err := f.svc.ShareChart(testkit.Context(t), chartRequest(), share.ViaGRPC, "")
	if err != nil {
		t.Fatal(err)
	}
	items := f.pub.published()
	if len(items) != 1 || items[0].Subject != topology.SlackOut(org, acme, "upload") {
		t.Fatalf("published %v", items)
	}
	up := items[0].Event.(*slackv1.UploadFile)
	if up.GetEnvelope().GetEventId() != res.CommandIDs[0] || up.GetIdempotencyKey() != res.CommandIDs[0] {
		t.Errorf("ids %s %s, want %s", up.GetEnvelope().GetEventId(), up.GetIdempotencyKey(), res.CommandIDs[0])
	}
	var got []string
	for _, tg := range up.GetTargets() {
		got = append(got, tg.GetChannelId())
	}
	if !slices.Equal(got, []string{general, sales}) {
		t.Errorf("targets %v", got)
	}
	img, err := png.Decode(bytes.NewReader(up.GetContent()))
	if err != nil || img.Bounds().Dx() != 640 || img.Bounds().Dy() != 360 {
		t.Fatalf("PNG: %v %v", img.Bounds(), err)
	}
	if up.GetFilename() != "pipeline-by-stage.png" || up.GetContentType() != "image/png" || up.GetTitle() != "Pipeline by stage · Pipeline" {
		t.Errorf("file %q %q %q", up.GetFilename(), up.GetContentType(), up.GetTitle())
	}
	if c := up.GetInitialComment(); !strings.HasPrefix(c, "Numbers for Monday &amp; more\n") || !strings.Contains(c, "Shared by <@"+annID+">") {
		t.Errorf("initial comment %q", c)
	}
}

func TestShareChartRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := testkit.Context(t)
	noChart := chartRequest()
	noChart.Chart = nil
	if _, err := f.svc.ShareChart(ctx, noChart, share.ViaGRPC, ""); !errors.Is(err, share.ErrPrecondition) || !strings.Contains(err.Error(), "only reports with a chart can be shared") {
		t.Errorf("report without a chart: %v", err)
	}
	bad := chartRequest()
	bad.Chart.Series[0].Values = []float64{1}
	if _, err := f.svc.ShareChart(ctx, bad, share.ViaGRPC, ""); !errors.Is(err, share.ErrInvalid) {
		t.Errorf("chart with missing values: %v", err)
	}
	outside := chartRequest()
	outside.Targets = []string{deals}
	if _, err := f.svc.ShareChart(ctx, outside, share.ViaGRPC, ""); !errors.Is(err, share.ErrDenied) {
		t.Errorf("chart to another team's channel: %v", err)
	}
	if n := len(f.pub.published()); n != 0 {
		t.Errorf("%d commands published", n)
	}
}

func TestListTargets(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := testkit.Context(t)
	f.teams.members[ann] = append(f.teams.members[ann], share.Team{ID: "T0REMOVED1"}) // a member, but not an active team of the org
	tg, err := f.svc.ListTargets(ctx, org, "Ann@Acme.test", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(tg.Teams) != 1 || tg.Teams[0].ID != acme || tg.Channels != nil {
		t.Errorf("teams %+v", tg)
	}
	tg, err = f.svc.ListTargets(ctx, org, ann, acme)
	if err != nil {
		t.Fatal(err)
	}
	var chans []string
	for _, c := range tg.Channels {
		chans = append(chans, c.ID)
	}
	if !slices.Equal(chans, []string{general, sales}) || len(tg.Users) != 2 {
		t.Errorf("channels %v (only where the app can post), users %v", chans, tg.Users)
	}
	for _, c := range []struct {
		team string
		want error
	}{{globex, share.ErrDenied}, {"T0REMOVED1", share.ErrNotFound}, {"bad.team", share.ErrInvalid}} {
		if _, err := f.svc.ListTargets(ctx, org, ann, c.team); !errors.Is(err, c.want) {
			t.Errorf("team %s: %v, want %v", c.team, err, c.want)
		}
	}
	f.access.set(org, share.Access{Teams: []string{acme}})
	if _, err := f.svc.ListTargets(ctx, org, ann, ""); !errors.Is(err, share.ErrPrecondition) {
		t.Errorf("disabled org: %v", err)
	}
}

// TestListSharesOutcomesAndPages: outcomes add up per share, other
// services' outcomes are ignored, and pages follow each other.
func TestListSharesOutcomesAndPages(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := testkit.Context(t)
	var ids []app.Result
	for _, targets := range [][]string{{general}, {general, sales}, {sales}} {
		r, err := f.svc.ShareRecord(ctx, channels(targets...), share.ViaGRPC, "")
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r)
		f.clock.advance(time.Second)
	}
	if _, err := f.svc.ShareRecord(ctx, channels(deals), share.ViaGRPC, ""); err == nil {
		t.Fatal("a refused share succeeded")
	}
	out := func(id, cmd, origin string, ok bool) {
		t.Helper()
		var err error
		env := &commonv1.Envelope{EventId: id, OrgId: org}
		if ok {
			err = f.svc.HandleDeliverySucceeded(ctx, &integrationv1.DeliverySucceeded{Envelope: env, CommandId: cmd, Origin: origin})
		} else {
			err = f.svc.HandleDeliveryFailed(ctx, &integrationv1.DeliveryFailed{Envelope: env, CommandId: cmd, Origin: origin,
				Code: integrationv1.DeliveryFailureCode_DELIVERY_FAILURE_CODE_TARGET_NOT_FOUND})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	out("e1", ids[0].CommandIDs[0], "sharing/share_record", true)
	out("e1", ids[0].CommandIDs[0], "sharing/share_record", true) // redelivered
	out("e2", ids[1].CommandIDs[0], "sharing/share_record", true)
	out("e3", ids[1].CommandIDs[1], "sharing/share_record", false)
	out("e4", ids[2].CommandIDs[0], "workflows/rule:1", false) // not ours

	var got []app.Listed
	token := ""
	for page := 0; ; page++ {
		list, next, err := f.svc.ListShares(ctx, app.SharesQuery{Org: org, PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, list...)
		if next == "" {
			break
		}
		if page > 3 {
			t.Fatal("paging does not end")
		}
		token = next
	}
	if len(got) != 4 {
		t.Fatalf("listed %d shares, want 4", len(got))
	}
	want := map[string]string{ids[0].ShareID: share.OutcomeDelivered, ids[1].ShareID: share.OutcomePartial, ids[2].ShareID: share.OutcomePending}
	for i, l := range got {
		if i > 0 && l.SharedAt.After(got[i-1].SharedAt) {
			t.Errorf("not newest first at %d", i)
		}
		w, ok := want[l.ID]
		if !ok {
			w = share.OutcomeRefused
		}
		if l.Outcome != w {
			t.Errorf("share %s (%s): outcome %q %q, want %q", l.ID, l.What, l.Outcome, l.Detail, w)
		}
	}
	if _, _, err := f.svc.ListShares(ctx, app.SharesQuery{Org: org, PageToken: "garbage"}); !errors.Is(err, share.ErrInvalid) {
		t.Errorf("bad page token: %v", err)
	}
}

func click(value string) *slackv1.InteractionReceived {
	return &slackv1.InteractionReceived{
		Envelope: &commonv1.Envelope{EventId: "slack-interaction:1.2.3", OrgId: org},
		TeamId:   acme, ChannelId: sales, UserId: annID, ActionId: card.ShareActionID, Value: value,
		ResponseUrl: "https://hooks.slack.com/actions/T/1/x",
	}
}

func TestShareButtonPostsTheCardAndUpdatesTheResults(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := testkit.Context(t)
	ev := click(f.button(card.Ref{Org: org, Module: "Deals", ID: "d1"}))
	for range 2 { // a redelivered click changes nothing
		if err := f.svc.ShareFromButton(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	items := f.pub.published()
	if len(items) != 2 {
		t.Fatalf("published %d commands, want a post and a reply", len(items))
	}
	post, ok := items[0].Event.(*slackv1.PostMessage)
	if !ok || items[0].Subject != topology.SlackOut(org, acme, "post") || post.GetTarget().GetChannelId() != sales {
		t.Fatalf("first command %T on %s", items[0].Event, items[0].Subject)
	}
	if post.GetIdempotencyKey() != ev.GetEnvelope().GetEventId() || post.GetEnvelope().GetCausationId() != ev.GetEnvelope().GetEventId() {
		t.Errorf("post key %q, want the interaction's event id", post.GetIdempotencyKey())
	}
	if b := texts(t, post.GetBlocksJson()); !strings.Contains(b, "Shared by <@"+annID+">") || !strings.Contains(b, "Q4 licences") || strings.Contains(b, card.ShareActionID) {
		t.Errorf("card %s: want the record, the attribution and no share button", b)
	}
	reply, ok := items[1].Event.(*slackv1.RespondToURL)
	if !ok || !reply.GetReplaceOriginal() || reply.GetResponseUrl() != ev.GetResponseUrl() || reply.GetResponseType() != slackv1.ResponseType_RESPONSE_TYPE_EPHEMERAL ||
		!strings.Contains(reply.GetText(), "You shared *Q4 licences* in <#"+sales+">") {
		t.Errorf("reply %v", reply)
	}
	all := f.repo.all()
	if len(all) != 1 || all[0].Via != share.ViaButton || all[0].SharerSlackUser != annID || all[0].Sharer.Email != ann {
		t.Errorf("recorded %+v", all)
	}
}

func TestShareButtonRefusals(t *testing.T) {
	t.Parallel()
	ref := card.Ref{Org: org, Module: "Deals", ID: "d1"}
	cases := []struct {
		name    string
		prepare func(*fixture, *slackv1.InteractionReceived)
		// answered: the user is told why under their results.
		answered bool
		msg      string
		recorded bool
	}{
		{"another button", func(_ *fixture, ev *slackv1.InteractionReceived) { ev.ActionId = card.OpenActionID }, false, "", false},
		{"not a signed button", func(_ *fixture, ev *slackv1.InteractionReceived) { ev.Value = `{"o":"org1","m":"Deals","i":"d1"}` }, true, "not valid", false},
		{"a forged button", func(_ *fixture, ev *slackv1.InteractionReceived) {
			forger, _ := card.NewButtons(nil, []byte(strings.Repeat("f", 32)))
			b, _ := forger.ShareButton(card.Grant{Ref: ref, Team: acme, Channel: sales, User: annID})
			ev.Value = b.Value
		}, true, "not valid", false},
		{"another user's button", func(_ *fixture, ev *slackv1.InteractionReceived) { ev.UserId = bobID }, true, "not valid", false},
		{"clicked in another channel", func(_ *fixture, ev *slackv1.InteractionReceived) { ev.ChannelId = general }, true, "not valid", false},
		{"expired", func(f *fixture, _ *slackv1.InteractionReceived) { f.clock.advance(card.GrantTTL + time.Second) }, true, "expired", false},
		{"another org's record", func(f *fixture, ev *slackv1.InteractionReceived) {
			ev.Value = f.button(card.Ref{Org: "o2", Module: "Deals", ID: "d1"})
		}, true, "not valid", false},
		{"no longer an active CRM user", func(f *fixture, _ *slackv1.InteractionReceived) { f.records.inactive = map[string]bool{ann: true} }, true, "not an active user of the CRM", true},
		{"org disabled", func(f *fixture, _ *slackv1.InteractionReceived) {
			f.access.set(org, share.Access{Teams: []string{acme}})
		}, false, "", true},
		{"deleted Slack user", func(f *fixture, ev *slackv1.InteractionReceived) {
			ev.UserId = bobID
			b, _ := f.buttons.ShareButton(card.Grant{Ref: ref, Team: acme, Channel: sales, User: bobID})
			ev.Value = b.Value
		}, true, "could not be matched", true},
		{"record gone", func(f *fixture, ev *slackv1.InteractionReceived) {
			ev.Value = f.button(card.Ref{Org: org, Module: "Deals", ID: "d404"})
		}, true, "no longer in the CRM", true},
		{"conversation the app cannot post in", func(f *fixture, ev *slackv1.InteractionReceived) {
			ev.ChannelId = random
			ev.Value = f.buttonIn(ref, random)
		}, true, "I can't post in this conversation", true},
		{"a DM", func(f *fixture, ev *slackv1.InteractionReceived) {
			ev.ChannelId = "D0ANNBOB01"
			ev.Value = f.buttonIn(ref, "D0ANNBOB01")
		}, true, "I can't post in this conversation", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			ev := click(f.button(ref))
			c.prepare(f, ev)
			if err := f.svc.ShareFromButton(testkit.Context(t), ev); err != nil {
				t.Fatalf("a refusal is not retried: %v", err)
			}
			items := f.pub.published()
			if c.answered {
				r, ok := func() (*slackv1.RespondToURL, bool) {
					if len(items) != 1 {
						return nil, false
					}
					r, ok := items[0].Event.(*slackv1.RespondToURL)
					return r, ok
				}()
				if !ok || r.GetReplaceOriginal() || !strings.Contains(r.GetText(), c.msg) {
					t.Errorf("want only an answer containing %q, not replacing the results; got %v", c.msg, items)
				}
			} else if len(items) != 0 {
				t.Errorf("published %v", items)
			}
			if got := len(f.repo.all()); (got == 1) != c.recorded {
				t.Errorf("%d shares recorded", got)
			}
		})
	}
	// A dependency failure is retried.
	f := newFixture(t)
	f.teams.err = share.Errorf(share.ErrUnavailable, "registry down")
	if err := f.svc.ShareFromButton(testkit.Context(t), click(f.button(ref))); err == nil {
		t.Error("registry down: the click must be handled again")
	}
}

// TestShareRequestedThroughTheBus: the event id stands for a request id,
// refusals are recorded and acknowledged, old requests are refused and
// dependency failures are retried.
func TestShareRequestedThroughTheBus(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := testkit.Context(t)
	ev := func(id string, at time.Time, req *sharingv1.ShareRecordRequest) *sharingv1.ShareRecordRequested {
		return &sharingv1.ShareRecordRequested{Envelope: &commonv1.Envelope{EventId: id, OrgId: org, OccurredAt: timestamppb.New(at)}, Request: req}
	}
	now := f.clock.now()
	for range 2 {
		if err := f.svc.HandleShareRecordRequested(ctx, ev("crm-ev-1", now, channels(general))); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.pub.published()); n != 1 {
		t.Errorf("a redelivered request published %d commands, want 1", n)
	}
	if err := f.svc.HandleShareRecordRequested(ctx, ev("crm-ev-2", now.Add(-2*time.Hour), channels(general))); err != nil {
		t.Fatal(err)
	}
	other := channels(general)
	other.OrgId = "o2"
	if err := f.svc.HandleShareRecordRequested(ctx, ev("crm-ev-3", now, other)); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.HandleShareRecordRequested(ctx, ev("crm-ev-4", now, channels(deals))); err != nil {
		t.Fatal(err)
	}
	if n := len(f.pub.published()); n != 1 {
		t.Errorf("refused requests published: %d commands", n)
	}
	refused := 0
	for _, s := range f.repo.all() {
		if s.Refused {
			refused++
			if s.Via != share.ViaBus {
				t.Errorf("refusal via %q", s.Via)
			}
		}
	}
	if refused != 3 {
		t.Errorf("%d refusals recorded, want 3 (too old, org mismatch, outside the team)", refused)
	}
	f.teams.err = share.Errorf(share.ErrUnavailable, "registry down")
	if err := f.svc.HandleShareRecordRequested(ctx, ev("crm-ev-5", now, channels(sales))); err == nil {
		t.Error("registry down: the request must be retried")
	}
	cr := &sharingv1.ShareChartRequested{Envelope: &commonv1.Envelope{EventId: "crm-ev-6", OrgId: org, OccurredAt: timestamppb.New(now)}, Request: chartRequest()}
	f.teams.err = nil
	if err := f.svc.HandleShareChartRequested(ctx, cr); err != nil {
		t.Fatal(err)
	}
	if n := len(f.pub.published()); n != 2 {
		t.Errorf("chart request: %d commands in all, want 2", n)
	}
}
