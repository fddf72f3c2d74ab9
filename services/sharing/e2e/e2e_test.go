// Package e2e runs sharing end to end, in-process, with the services it
// works with (team registry, gateway, query, delivery) on embedded NATS and
// FerretDB and the Slack stand-in as Slack: what a share sends is read back
// from the stand-in, not from the bus.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/crmslack/crmslack/libs/card"
	"github.com/crmslack/crmslack/libs/slackstandin"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/testkit/harness"
	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	queryv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/query/v1"
	sharingv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/sharing/v1"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"

	"github.com/crmslack/crmslack/services/sharing/internal/chart"
	"github.com/crmslack/crmslack/services/sharing/internal/chart/pixeltest"
)

var sharer = &commonv1.CrmUserRef{Id: "crm-alice", Name: "Alice Johnson", Email: aliceEmail}

// texts gathers every string of a Block Kit document, one per line.
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

func wait(t *testing.T, what string, get func() bool) {
	t.Helper()
	testkit.Eventually(t, 30*time.Second, get, what)
}

// TestSharing walks the "done when" in order, on one stack.
func TestSharing(t *testing.T) {
	s := startStack(t)
	s.seedCRM(t)
	ctx := testkit.Context(t)
	std := s.standin

	t.Run("a deal shared to two channels and one person appears in each", func(t *testing.T) {
		const msg = "Can we close this one by Friday? <!channel> & co"
		resp, err := s.sharing.ShareRecord(ctx, &sharingv1.ShareRecordRequest{
			OrgId: org, Sharer: sharer, Module: "Deals", RecordId: "d-1001", Message: msg,
			TeamId: acme, TargetKind: sharingv1.TargetKind_TARGET_KIND_CHANNELS, Targets: []string{acmeGeneral, acmeSales},
			RequestId: "crm-share-1",
		})
		if err != nil {
			t.Fatal(err)
		}
		dm, err := s.sharing.ShareRecord(ctx, &sharingv1.ShareRecordRequest{
			OrgId: org, Sharer: sharer, Module: "Deals", RecordId: "d-1001", Message: msg,
			TeamId: acme, TargetKind: sharingv1.TargetKind_TARGET_KIND_USERS, Targets: []string{bob},
		})
		if err != nil {
			t.Fatal(err)
		}
		// A retried request posts nothing twice.
		again, err := s.sharing.ShareRecord(ctx, &sharingv1.ShareRecordRequest{
			OrgId: org, Sharer: sharer, Module: "Deals", RecordId: "d-1001", Message: msg,
			TeamId: acme, TargetKind: sharingv1.TargetKind_TARGET_KIND_CHANNELS, Targets: []string{acmeGeneral, acmeSales},
			RequestId: "crm-share-1",
		})
		if err != nil || again.GetShareId() != resp.GetShareId() {
			t.Fatalf("retry: %v %v", again, err)
		}

		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		var got []slackstandin.Message
		for _, f := range []slackstandin.MessageFilter{
			{Team: acme, Channel: acmeGeneral, Kind: slackstandin.KindMessage},
			{Team: acme, Channel: acmeSales, Kind: slackstandin.KindMessage},
			{Team: acme, User: bob, Kind: slackstandin.KindMessage},
		} {
			ms, err := std.WaitForMessages(wctx, 1, f)
			if err != nil {
				t.Fatalf("no card in %+v: %v", f, err)
			}
			got = append(got, ms...)
		}
		for _, m := range got {
			if m.Author != "U0ACMEBOT1" {
				t.Errorf("%s: posted by %s, want the app's bot", m.Channel, m.Author)
			}
			body := texts(t, m.Blocks)
			for _, want := range []string{
				"Can we close this one by Friday? &lt;!channel&gt; &amp; co", // the message, escaped: no @channel
				"Zylker Q4 licences", "*Amount*\nEUR 125,000.00", "*Stage*\nNegotiation/Review", "*Closing Date*\nDec 15, 2026",
				"*Account Name*\nZylker Corp", "*Deal Owner*\nAlice Johnson",
				"Deal · Shared by <@" + alice + ">",
				crmBaseURL + "/Deals/d-1001",
			} {
				if !strings.Contains(body, want) {
					t.Errorf("card in %s lacks %q:\n%s", m.Channel, want, body)
				}
			}
			if !strings.Contains(m.Text, "Zylker Q4 licences") {
				t.Errorf("fallback text %q", m.Text)
			}
		}
		// Give a duplicate time to show up, then count.
		wait(t, "the share is reported delivered", func() bool {
			l, err := s.sharing.ListShares(ctx, &sharingv1.ListSharesRequest{OrgId: org})
			if err != nil {
				return false
			}
			delivered := 0
			for _, sh := range l.GetShares() {
				if (sh.GetShareId() == resp.GetShareId() || sh.GetShareId() == dm.GetShareId()) && sh.GetOutcome() == "delivered" {
					delivered++
				}
			}
			return delivered == 2
		})
		for _, f := range []slackstandin.MessageFilter{{Channel: acmeGeneral}, {Channel: acmeSales}, {User: bob}} {
			f.Team, f.Kind = acme, slackstandin.KindMessage
			if n := len(std.Messages(f)); n != 1 {
				t.Errorf("%d cards in %+v, want exactly 1", n, f)
			}
		}
	})

	t.Run("a chart share uploads a PNG with the bars where the data puts them", func(t *testing.T) {
		before := len(std.Files())
		resp, err := s.sharing.ShareChart(ctx, &sharingv1.ShareChartRequest{
			OrgId: org, Sharer: sharer, ReportName: "Won deals by region", Message: "Q4 so far",
			TeamId: acme, TargetKind: sharingv1.TargetKind_TARGET_KIND_CHANNELS, Targets: []string{acmeGeneral, acmeDesk},
			Chart: &sharingv1.Chart{
				Type: sharingv1.ChartType_CHART_TYPE_COLUMN, Title: "Won deals", YAxisLabel: "Deals",
				Categories: []string{"North", "Centre", "South"},
				Series:     []*sharingv1.Series{{Name: "Deals", Values: []float64{10, 0, 30}}},
				WidthPx:    640, HeightPx: 400,
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		files, err := std.WaitForFiles(wctx, before+1)
		if err != nil {
			t.Fatal(err)
		}
		f := files[len(files)-1]
		slices.Sort(f.Channels)
		if !slices.Equal(f.Channels, []string{acmeGeneral, acmeDesk}) || f.Team != acme {
			t.Errorf("file shared to %v in %s", f.Channels, f.Team)
		}
		if !strings.HasPrefix(f.InitialComment, "Q4 so far\n") || !strings.Contains(f.InitialComment, "Won deals by region") {
			t.Errorf("initial comment %q", f.InitialComment)
		}
		img, err := png.Decode(bytes.NewReader(f.Content))
		if err != nil {
			t.Fatalf("the upload is not a PNG: %v", err)
		}
		if b := img.Bounds(); b.Dx() != 640 || b.Dy() != 400 {
			t.Errorf("PNG is %dx%d, want 640x400", b.Dx(), b.Dy())
		}
		bars := pixeltest.FindBars(img, chart.Palette[0], true, 30)
		if len(bars) != 2 {
			t.Fatalf("found %d columns, want 2 (North and South; Centre is 0): %+v", len(bars), bars)
		}
		north, south := bars[0], bars[1]
		if north.Hi != south.Hi {
			t.Errorf("columns on different baselines: %d, %d", north.Hi, south.Hi)
		}
		if r := float64(south.Len()) / float64(north.Len()); math.Abs(r-3) > 0.05*3 {
			t.Errorf("South is %.2f× North, want 3×", r)
		}
		third := img.Bounds().Dx() / 3
		if north.Centre > third+third/2 || south.Centre < third+third/2 || south.Centre-north.Centre < third {
			t.Errorf("columns at x=%d and x=%d: not at the first and third of three categories", north.Centre, south.Centre)
		}
		unit := float64(north.Len()) / 10
		middle := (north.Centre + south.Centre) / 2
		if pixeltest.Same(img.At(middle, north.Hi-int(5*unit)), chart.Palette[0]) {
			t.Error("the Centre column (0) has the series colour")
		}
		wait(t, "the chart share is reported delivered", func() bool {
			l, err := s.sharing.ListShares(ctx, &sharingv1.ListSharesRequest{OrgId: org})
			if err != nil {
				return false
			}
			for _, sh := range l.GetShares() {
				if sh.GetShareId() == resp.GetShareId() {
					return sh.GetOutcome() == "delivered" && sh.GetKind() == "chart"
				}
			}
			return false
		})
	})

	t.Run("the share button of a /zcrm result posts the card where the command was typed", func(t *testing.T) {
		// Alice's private results, as the query service answers /zcrm.
		res, err := s.query.RunSlashCommand(ctx, &queryv1.RunSlashCommandRequest{
			OrgId: org, TeamId: acme, ChannelId: acmeSales, SlackUserId: alice, Text: "deals zylker",
		})
		if err != nil || res.GetRefused() {
			t.Fatalf("/zcrm deals zylker: %v %v", res, err)
		}
		var blocks []struct {
			Elements []struct {
				ActionID string `json:"action_id"`
				Value    string `json:"value"`
			} `json:"elements"`
		}
		if err := json.Unmarshal(res.GetBlocksJson(), &blocks); err != nil {
			t.Fatal(err)
		}
		value := ""
		for _, b := range blocks {
			for _, e := range b.Elements {
				if e.ActionID == card.ShareActionID {
					value = e.Value
				}
			}
		}
		if value == "" {
			t.Fatalf("no share button in the results: %s", res.GetBlocksJson())
		}
		before := len(std.Messages(slackstandin.MessageFilter{Team: acme, Channel: acmeSales, Kind: slackstandin.KindMessage}))
		d, err := s.sender.BlockAction(ctx, s.gateway+"/slack/interactions", slackstandin.BlockAction{
			TeamID: acme, ChannelID: acmeSales, UserID: alice, Ephemeral: true,
			ActionID: card.ShareActionID, Value: value, Text: "Share this record",
		})
		if err != nil || d.StatusCode != 200 {
			t.Fatalf("click: %v %v", d, err)
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		posts, err := std.WaitForMessages(wctx, before+1, slackstandin.MessageFilter{Team: acme, Channel: acmeSales, Kind: slackstandin.KindMessage})
		if err != nil {
			t.Fatal(err)
		}
		body := texts(t, posts[len(posts)-1].Blocks)
		for _, want := range []string{"Zylker Q4 licences", "Shared by <@" + alice + ">", "*Amount*\nEUR 125,000.00"} {
			if !strings.Contains(body, want) {
				t.Errorf("shared card lacks %q:\n%s", want, body)
			}
		}
		replies, err := std.WaitForMessages(wctx, 1, slackstandin.MessageFilter{Team: acme, Channel: acmeSales, User: alice, Kind: slackstandin.KindResponseURL})
		if err != nil {
			t.Fatal(err)
		}
		r := replies[len(replies)-1]
		if !r.ReplaceOriginal || r.ResponseType != "ephemeral" || !strings.Contains(r.Text, "You shared *Zylker Q4 licences* in <#"+acmeSales+">") {
			t.Errorf("the private results were not replaced by the note: %+v", r)
		}
	})

	t.Run("a share asked through the bus is posted once", func(t *testing.T) {
		f := slackstandin.MessageFilter{Team: acme, Channel: acmeGeneral, Kind: slackstandin.KindMessage}
		before := len(std.Messages(f))
		// The CRM asks, then asks again after a timeout: a new event, the
		// same request id.
		for _, id := range []string{"crm-bus-share-1", "crm-bus-share-1-retry"} {
			ev := &sharingv1.ShareRecordRequested{Envelope: harness.Envelope(org, id), Request: &sharingv1.ShareRecordRequest{
				OrgId: org, Sharer: sharer, Module: "Deals", RecordId: "d-1001", Message: "From a workflow",
				TeamId: acme, TargetKind: sharingv1.TargetKind_TARGET_KIND_CHANNELS, Targets: []string{acmeGeneral},
				RequestId: "wf-run-7",
			}}
			subject, err := topology.SubjectFor(ev)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.bus.Publish(ctx, subject, ev); err != nil {
				t.Fatal(err)
			}
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		ms, err := std.WaitForMessages(wctx, before+1, f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(texts(t, ms[len(ms)-1].Blocks), "From a workflow") {
			t.Errorf("bus share lacks its message")
		}
		wait(t, "both requests handled", func() bool {
			c, err := s.js.Consumer(ctx, topology.StreamCRM, "sharing-record-requests")
			if err != nil {
				return false
			}
			info, err := c.Info(ctx)
			return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Consumer >= 2
		})
		time.Sleep(200 * time.Millisecond)
		if n := len(std.Messages(f)) - before; n != 1 {
			t.Errorf("the request asked twice was posted %d times", n)
		}
	})

	t.Run("refusals send nothing", func(t *testing.T) {
		// Let every earlier command settle, then nothing may move.
		time.Sleep(300 * time.Millisecond)
		outBefore, msgsBefore, filesBefore := s.countOut(t), len(std.Messages(slackstandin.MessageFilter{})), len(std.Files())
		deal := func(team string, targets ...string) *sharingv1.ShareRecordRequest {
			return &sharingv1.ShareRecordRequest{OrgId: org, Sharer: sharer, Module: "Deals", RecordId: "d-1001", Message: "psst",
				TeamId: team, TargetKind: sharingv1.TargetKind_TARGET_KIND_CHANNELS, Targets: targets}
		}
		check := func(name string, err error, code codes.Code, msg string) {
			t.Helper()
			if status.Code(err) != code || !strings.Contains(status.Convert(err).Message(), msg) {
				t.Errorf("%s: %v, want %s containing %q", name, err, code, msg)
			}
		}
		_, err := s.sharing.ShareRecord(ctx, deal(acme, acmeGeneral, globexDeals))
		check("a channel of another team", err, codes.PermissionDenied, "is not a channel of Slack team "+acme)
		_, err = s.sharing.ShareRecord(ctx, deal(globex, globexDeals))
		check("a team the sharer is not in", err, codes.PermissionDenied, aliceEmail+" is not a member of Slack team "+globex)

		if _, err := s.registry.DisableIntegration(ctx, &teamsv1.DisableIntegrationRequest{OrgId: org,
			Caller: &teamsv1.Caller{User: &commonv1.CrmUserRef{Id: "crm-admin"}, IsAdmin: true}}); err != nil {
			t.Fatal(err)
		}
		wait(t, "sharing sees the org disabled", func() bool {
			_, err := s.sharing.ListTargets(ctx, &sharingv1.ListTargetsRequest{OrgId: org, SharerEmail: aliceEmail})
			return status.Code(err) == codes.FailedPrecondition
		})
		_, err = s.sharing.ShareRecord(ctx, deal(acme, acmeGeneral))
		check("the org disabled", err, codes.FailedPrecondition, "the Slack integration of org "+org+" is disabled")
		_, err = s.sharing.ShareChart(ctx, &sharingv1.ShareChartRequest{OrgId: org, Sharer: sharer, ReportName: "No chart",
			TeamId: acme, TargetKind: sharingv1.TargetKind_TARGET_KIND_CHANNELS, Targets: []string{acmeGeneral}})
		check("a report without a chart", err, codes.FailedPrecondition, "only reports with a chart can be shared")

		time.Sleep(300 * time.Millisecond)
		if n := s.countOut(t); n != outBefore {
			t.Errorf("%d commands reached SLACK_OUT for refused shares", n-outBefore)
		}
		if n := len(std.Messages(slackstandin.MessageFilter{})); n != msgsBefore {
			t.Errorf("%d messages reached the stand-in for refused shares", n-msgsBefore)
		}
		if n := len(std.Files()); n != filesBefore {
			t.Errorf("%d files reached the stand-in for refused shares", n-filesBefore)
		}
		l, err := s.sharing.ListShares(ctx, &sharingv1.ListSharesRequest{OrgId: org})
		if err != nil {
			t.Fatal(err)
		}
		refused := 0
		for _, sh := range l.GetShares() {
			if sh.GetOutcome() == "refused" {
				refused++
				if sh.GetOutcomeDetail() == "" {
					t.Errorf("refusal %s without its reason", sh.GetShareId())
				}
			}
		}
		if refused != 4 {
			t.Errorf("%d refusals recorded, want 4", refused)
		}
	})
}
