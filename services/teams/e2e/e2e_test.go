// Package e2e runs the gateway and the team registry together, in-process,
// on embedded NATS and FerretDB, with the Slack stand-in acting as Slack:
// the browser-driven "Add to Slack" flow, Slack's signed requests and
// events, and the admin's gRPC calls.
package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/slackstandin"
	"github.com/crmslack/crmslack/libs/store"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/topology"
	slackv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/slack/v1"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"

	"github.com/crmslack/crmslack/services/teams/internal/accesskv"
	"github.com/crmslack/crmslack/services/teams/internal/inbound"
	"github.com/crmslack/crmslack/services/teams/internal/sealing"
)

const (
	org    = "acme-crm"
	acme   = "T0ACME0001" // stand-in workspace "Acme Corp"
	globex = "T0GLBX0001" // stand-in workspace "Globex"
)

// TestInstallTwoTeamsThenUninstallDisableEnable walks the issue's "done
// when" end to end, in order.
func TestInstallTwoTeamsThenUninstallDisableEnable(t *testing.T) {
	s := startStack(t, stackOptions{})
	ctx := testkit.Context(t)
	alice := newBrowser(t) // the admin's browser

	// An admin installs two teams for one org through /slack/install →
	// the stand-in's authorize page → the callback.
	for _, c := range []struct{ team, name string }{{acme, "Acme Corp"}, {globex, "Globex"}} {
		p := alice.get(t, s.beginInstall(t, org, c.team))
		if p.status != http.StatusOK || !strings.Contains(p.body, "Slack is connected") || !strings.Contains(p.body, c.name) {
			t.Fatalf("installing %s: %d %s", c.team, p.status, p.body)
		}
	}
	installed, err := s.registry.ListTeams(ctx, &teamsv1.ListTeamsRequest{OrgId: org})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*teamsv1.OrgTeam{}
	for _, tm := range installed.GetTeams() {
		got[tm.GetTeam().GetTeamId()] = tm
	}
	if len(got) != 2 || !installed.GetIntegrationEnabled() {
		t.Fatalf("ListTeams after two installs: %v", installed)
	}
	for id, name := range map[string]string{acme: "Acme Corp", globex: "Globex"} {
		tm := got[id]
		if tm.GetStatus() != teamsv1.TeamStatus_TEAM_STATUS_ACTIVE || tm.GetTeam().GetName() != name ||
			tm.GetTeam().GetInstalledBy().GetId() != admin.GetUser().GetId() || tm.GetTeam().GetBotUserId() == "" ||
			!slices.Contains(tm.GetTeam().GetScopes(), "chat:write") {
			t.Errorf("team %s listed as %v", id, tm)
		}
	}
	if acmeDomain := got[acme].GetTeam().GetDomain(); acmeDomain != "acme-corp" {
		t.Errorf("Acme's domain %q, want acme-corp (from auth.test)", acmeDomain)
	}
	if n := s.countOn(t, topology.StreamIntegration, topology.Team(org, "installed")); n != 2 {
		t.Errorf("%d TeamInstalled, want 2", n)
	}

	t.Run("replayed state is refused", func(t *testing.T) {
		// Replaying the last callback: the browser no longer has the
		// cookie (the gateway cleared it), so it is refused.
		cb := alice.lastVisit("/slack/oauth/callback")
		if cb == nil {
			t.Fatal("no callback visited")
		}
		if p := alice.get(t, cb.String()); p.status != http.StatusBadRequest {
			t.Fatalf("replayed callback: %d %s", p.status, p.body)
		}
		// Even with the cookie (captured along with the URL), the state
		// works once only.
		alice.stopAt = s.gateway + "/slack/oauth/callback"
		p := alice.get(t, s.beginInstall(t, org, acme))
		alice.stopAt = ""
		cbURL, err := url.Parse(p.header.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		captured := alice.client.Jar.Cookies(cbURL)
		if len(captured) != 1 {
			t.Fatalf("browser holds %d cookies for the callback", len(captured))
		}
		if p := alice.get(t, cbURL.String()); p.status != http.StatusOK {
			t.Fatalf("first use: %d %s", p.status, p.body)
		}
		alice.client.Jar.SetCookies(cbURL, captured)
		if p := alice.get(t, cbURL.String()); p.status != http.StatusBadRequest || !strings.Contains(p.body, "already used") {
			t.Fatalf("replayed state with its cookie: %d %s", p.status, p.body)
		}
	})

	t.Run("state from another browser is refused, and not burnt", func(t *testing.T) {
		// Alice starts an install; her browser stops where Slack sends it
		// back. Mallory gets the callback URL (code and state) and opens it
		// in his own browser.
		alice.stopAt = s.gateway + "/slack/oauth/callback"
		defer func() { alice.stopAt = "" }()
		p := alice.get(t, s.beginInstall(t, org, globex))
		cbURL := p.header.Get("Location")
		if p.status != http.StatusFound || !strings.HasPrefix(cbURL, s.gateway+"/slack/oauth/callback") {
			t.Fatalf("expected the stand-in's redirect to the callback, got %d %q", p.status, cbURL)
		}
		mallory := newBrowser(t)
		if p := mallory.get(t, cbURL); p.status != http.StatusBadRequest || !strings.Contains(p.body, "another browser") {
			t.Fatalf("wrong browser: %d %s", p.status, p.body)
		}
		// The refused attempt did not use the state up: Alice finishes.
		alice.stopAt = ""
		if p := alice.get(t, cbURL); p.status != http.StatusOK || !strings.Contains(p.body, "Globex") {
			t.Fatalf("Alice's own callback after Mallory's attempt: %d %s", p.status, p.body)
		}
	})

	t.Run("install tickets are checked and single use", func(t *testing.T) {
		u := s.beginInstall(t, org, "")
		if resp, err := http.Head(u); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("HEAD (a link checker): %v %v", resp, err)
		}
		if p := newBrowser(t).get(t, strings.Replace(u, "org="+org, "org=other-org", 1)); p.status != http.StatusBadRequest {
			t.Errorf("ticket for another org accepted: %d", p.status)
		}
		if p := newBrowser(t).get(t, u[:len(u)-3]); p.status != http.StatusBadRequest {
			t.Errorf("truncated ticket accepted: %d", p.status)
		}
		b := newBrowser(t)
		b.stopAt = s.standin.URL()
		if p := b.get(t, u); p.status != http.StatusFound || !strings.HasPrefix(p.header.Get("Location"), s.standin.URL()+"/oauth/v2/authorize?") {
			t.Fatalf("valid ticket: %d %q", p.status, p.header.Get("Location"))
		}
		if p := newBrowser(t).get(t, u); p.status != http.StatusBadRequest || !strings.Contains(p.body, "already used") {
			t.Errorf("reused ticket: %d %s", p.status, p.body)
		}
		if _, err := s.registry.BeginInstall(ctx, &teamsv1.BeginInstallRequest{OrgId: org, Caller: nonAdmin}); status.Code(err) != codes.PermissionDenied {
			t.Errorf("BeginInstall by a non-admin: %v", err)
		}
	})

	t.Run("access_denied shows a cancel page", func(t *testing.T) {
		b := newBrowser(t)
		b.stopAt = s.standin.URL()
		p := b.get(t, s.beginInstall(t, org, ""))
		b.stopAt = ""
		p = b.get(t, p.header.Get("Location")+"&deny=1")
		if p.status != http.StatusOK || !strings.Contains(p.body, "cancelled") {
			t.Fatalf("access_denied: %d %s", p.status, p.body)
		}
	})

	commandURL := s.gateway + "/slack/commands"
	cmd := slackstandin.SlashCommand{TeamID: acme, ChannelID: "C0ACMESALE", UserID: "U0ACME0BOB", Command: "/zcrm", Text: "leads zylker"}
	t.Run("forged signature and stale timestamp are refused", func(t *testing.T) {
		cases := []struct {
			name string
			opts []slackstandin.SendOption
			want int
		}{
			{"valid", nil, http.StatusOK},
			{"forged signature", []slackstandin.SendOption{slackstandin.WithSigningSecret("not-the-secret")}, http.StatusUnauthorized},
			{"stale timestamp", []slackstandin.SendOption{slackstandin.WithTimestamp(time.Now().Add(-6 * time.Minute))}, http.StatusUnauthorized},
			{"timestamp from the future", []slackstandin.SendOption{slackstandin.WithTimestamp(time.Now().Add(6 * time.Minute))}, http.StatusUnauthorized},
		}
		for _, c := range cases {
			d, err := s.sender.SlashCommand(ctx, commandURL, cmd, c.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if d.StatusCode != c.want {
				t.Errorf("%s: %d %s", c.name, d.StatusCode, d.Body)
			}
			if d.StatusCode == http.StatusUnauthorized && bytes.Contains(d.Body, []byte(signingSecret)) {
				t.Errorf("%s: the answer mentions the secret", c.name)
			}
		}
		ev, _ := s.sender.NewEvent(acme, map[string]any{"type": "app_uninstalled"})
		d, err := s.sender.SendEvent(ctx, s.gateway+"/slack/events", ev, slackstandin.WithSigningSecret("not-the-secret"))
		if err != nil || d.StatusCode != http.StatusUnauthorized {
			t.Fatalf("forged event: %v %v", d, err)
		}
		// Only the valid command reached the bus.
		if n := s.countOn(t, topology.StreamSlackIn, topology.SlackCommand(acme)); n != 1 {
			t.Errorf("%d commands published, want 1", n)
		}
		d, err = s.sender.URLVerification(ctx, s.gateway+"/slack/events", "challenge-xyz")
		if err != nil || d.StatusCode != http.StatusOK || string(d.Body) != "challenge-xyz" {
			t.Errorf("url_verification: %v %v", d, err)
		}
		metrics := newBrowser(t).get(t, s.gatewayOps+"/metrics")
		for _, want := range []string{
			`crmslack_gateway_slack_requests_total{endpoint="commands",outcome="bad_signature"} 3`,
			`crmslack_gateway_slack_requests_total{endpoint="commands",outcome="published"} 1`,
			`crmslack_gateway_slack_ack_seconds_count{endpoint="commands"} 4`,
		} {
			if !strings.Contains(metrics.body, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})

	t.Run("app_uninstalled sent twice removes the team once", func(t *testing.T) {
		s.standin.RevokeTeam(acme)
		ev, err := s.sender.NewEvent(acme, map[string]any{"type": "app_uninstalled"})
		if err != nil {
			t.Fatal(err)
		}
		for retry := range 2 {
			var d *slackstandin.Delivery
			if retry == 0 {
				d, err = s.sender.SendEvent(ctx, s.gateway+"/slack/events", ev)
			} else {
				d, err = s.sender.RetryEvent(ctx, s.gateway+"/slack/events", ev, retry)
			}
			if err != nil || d.StatusCode != http.StatusOK || d.Duration > 3*time.Second {
				t.Fatalf("delivery %d: %v %v", retry, d, err)
			}
		}
		// tokens_revoked for the same bot, the other order of Slack's pair:
		// nothing more may happen.
		botUser := got[acme].GetTeam().GetBotUserId()
		revoked, _ := s.sender.NewEvent(acme, map[string]any{"type": "tokens_revoked", "tokens": map[string]any{"oauth": []string{}, "bot": []string{botUser}}})
		if d, err := s.sender.SendEvent(ctx, s.gateway+"/slack/events", revoked); err != nil || d.StatusCode != http.StatusOK {
			t.Fatalf("tokens_revoked: %v %v", d, err)
		}
		testkit.Eventually(t, 10*time.Second, func() bool {
			r, err := s.registry.GetTeam(ctx, &teamsv1.GetTeamRequest{OrgId: org, TeamId: acme})
			return err == nil && r.GetTeam().GetStatus() == teamsv1.TeamStatus_TEAM_STATUS_REMOVED
		}, "Acme removed")
		testkit.Eventually(t, 10*time.Second, func() bool {
			return s.consumerIdle(t, topology.StreamSlackIn, inbound.Durable)
		}, "the registry handled every event")
		if n := s.countOn(t, topology.StreamSlackIn, topology.SlackEvent(acme, "app_uninstalled")); n != 1 {
			t.Errorf("%d app_uninstalled stored, want 1 (the retry is the same event)", n)
		}
		if n := s.countOn(t, topology.StreamIntegration, topology.Team(org, "removed")); n != 1 {
			t.Errorf("%d TeamRemoved published, want 1", n)
		}
		// The gateway learns of the removal through org_access and answers
		// a command from Acme itself.
		testkit.Eventually(t, 10*time.Second, func() bool {
			d, err := s.sender.SlashCommand(ctx, commandURL, cmd)
			return err == nil && d.StatusCode == http.StatusOK && bytes.Contains(d.Body, []byte("not connected to a CRM")) &&
				bytes.Contains(d.Body, []byte(`"ephemeral"`))
		}, "ephemeral 'not connected' answer for the removed team")
		list, err := s.registry.ListTeams(ctx, &teamsv1.ListTeamsRequest{OrgId: org})
		if err != nil || len(list.GetTeams()) != 1 || list.GetTeams()[0].GetTeam().GetTeamId() != globex {
			t.Fatalf("ListTeams after uninstall: %v %v", list, err)
		}
	})

	kv, err := s.js.KeyValue(ctx, topology.BucketOrgAccess)
	if err != nil {
		t.Fatal(err)
	}
	accessIs := func(enabled bool, teams ...string) func() bool {
		return func() bool {
			a, err := accesskv.Load(ctx, kv, org)
			if err != nil || a.GetIntegrationEnabled() != enabled || len(a.GetTeams()) != len(teams) {
				return false
			}
			for i, tm := range a.GetTeams() {
				if tm.GetTeamId() != teams[i] {
					return false
				}
			}
			return true
		}
	}
	testkit.Eventually(t, 5*time.Second, accessIs(true, globex), "OrgAccess lists Globex only")

	t.Run("disable then enable", func(t *testing.T) {
		if _, err := s.registry.DisableIntegration(ctx, &teamsv1.DisableIntegrationRequest{OrgId: org, Caller: nonAdmin}); status.Code(err) != codes.PermissionDenied {
			t.Fatalf("disable by a non-admin: %v", err)
		}
		if _, err := s.registry.DisableIntegration(ctx, &teamsv1.DisableIntegrationRequest{OrgId: org, Caller: admin}); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 5*time.Second, accessIs(false, globex), "OrgAccess disabled")
		if in, err := s.registry.GetIntegration(ctx, &teamsv1.GetIntegrationRequest{OrgId: org}); err != nil || in.GetEnabled() {
			t.Fatalf("GetIntegration after disable: %v %v", in, err)
		}
		if _, err := s.registry.GetBotToken(ctx, &teamsv1.GetBotTokenRequest{OrgId: org, TeamId: globex}); status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("GetBotToken while disabled: %v", err)
		}
		gcmd := slackstandin.SlashCommand{TeamID: globex, ChannelID: "C0GLBXDEAL", UserID: "U0GLBX0IVY", Command: "/zcrm", Text: "deals"}
		testkit.Eventually(t, 5*time.Second, func() bool {
			d, err := s.sender.SlashCommand(ctx, commandURL, gcmd)
			return err == nil && bytes.Contains(d.Body, []byte("turned off"))
		}, "a disabled org's team gets the 'turned off' answer")
		// Disabling twice is fine and announces nothing more.
		if _, err := s.registry.DisableIntegration(ctx, &teamsv1.DisableIntegrationRequest{OrgId: org, Caller: admin}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.registry.EnableIntegration(ctx, &teamsv1.EnableIntegrationRequest{OrgId: org, Caller: admin}); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 5*time.Second, accessIs(true, globex), "OrgAccess enabled again")
		tok, err := s.registry.GetBotToken(ctx, &teamsv1.GetBotTokenRequest{OrgId: org, TeamId: globex})
		if err != nil || !strings.HasPrefix(tok.GetBotToken(), "xoxb-") || tok.GetBotUserId() != "U0GLBXBOT1" {
			t.Fatalf("GetBotToken after enable: %v", err)
		}
		if n := s.countOn(t, topology.StreamIntegration, topology.Integration(org, "disabled")); n != 1 {
			t.Errorf("%d IntegrationDisabled, want 1", n)
		}
		if n := s.countOn(t, topology.StreamIntegration, topology.Integration(org, "enabled")); n != 1 {
			t.Errorf("%d IntegrationEnabled, want 1", n)
		}
		testkit.Eventually(t, 5*time.Second, func() bool {
			d, err := s.sender.SlashCommand(ctx, commandURL, gcmd)
			return err == nil && d.StatusCode == http.StatusOK && len(d.Body) == 0
		}, "commands flow again after enable")
	})

	t.Run("the stored token cannot be read without the key", func(t *testing.T) {
		tok, err := s.registry.GetBotToken(ctx, &teamsv1.GetBotTokenRequest{OrgId: org, TeamId: globex})
		if err != nil {
			t.Fatal(err)
		}
		db, err := store.Open(ctx, store.Config{URI: s.mongoURI, Database: s.database})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = db.Close(ctx) }()
		raw, err := db.Collection("org_teams").FindOne(ctx, bson.D{{Key: "_id", Value: org + "/" + globex}}).Raw()
		if err != nil {
			t.Fatal(err)
		}
		for _, needle := range [][]byte{[]byte(tok.GetBotToken()), []byte("xoxb"), []byte(tok.GetBotToken()[len(tok.GetBotToken())-24:])} {
			if bytes.Contains(raw, needle) {
				t.Fatalf("the raw document holds token bytes %q", needle)
			}
		}
		var doc struct {
			BotToken struct {
				KeyID string `bson:"kid"`
				Data  []byte `bson:"ct"`
			} `bson:"bot_token"`
		}
		if err := bson.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		if doc.BotToken.KeyID != "k1" || len(doc.BotToken.Data) < 28 {
			t.Fatalf("bot_token stored as %+v", doc.BotToken)
		}
		sealed := sealing.Sealed{KeyID: doc.BotToken.KeyID, Data: doc.BotToken.Data}
		aad := sealing.AAD("crmslack/teams/token/v1", org, globex, "bot")
		wrong, _ := sealing.ParseKeys("k1:" + testkit.RandomKey(t))
		if _, err := wrong.Open(sealed, aad); !errors.Is(err, sealing.ErrOpen) {
			t.Fatalf("opening with a wrong key: %v", err)
		}
		right, _ := sealing.ParseKeys(s.tokenKeys)
		if pt, err := right.Open(sealed, aad); err != nil || string(pt) != tok.GetBotToken() {
			t.Fatalf("opening with the right key: %v", err)
		}
	})

	t.Run("a verified slash command reaches the bus intact", func(t *testing.T) {
		gcmd := slackstandin.SlashCommand{TeamID: globex, ChannelID: "C0GLBXDEAL", UserID: "U0GLBX0IVY", Command: "/zcrm", Text: "deals [amount] > [20000]"}
		d, err := s.sender.SlashCommand(ctx, commandURL, gcmd)
		if err != nil || d.StatusCode != http.StatusOK {
			t.Fatal(d, err)
		}
		st, err := s.js.Stream(ctx, topology.StreamSlackIn)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := st.GetLastMsgForSubject(ctx, topology.SlackCommand(globex))
		if err != nil {
			t.Fatal(err)
		}
		var got slackv1.SlashCommandReceived
		if err := proto.Unmarshal(msg.Data, &got); err != nil {
			t.Fatal(err)
		}
		// The text as Slack sends it: with > escaped.
		if got.GetText() != "deals [amount] &gt; [20000]" || got.GetTriggerId() != d.TriggerID || got.GetResponseUrl() != d.ResponseURL ||
			got.GetEnvelope().GetOrgId() != org || got.GetEnvelope().GetEventId() != "slack-command:"+d.TriggerID {
			t.Fatalf("published %v", &got)
		}
	})

	t.Run("ListTeams by member email", func(t *testing.T) {
		cases := []struct {
			email string
			want  []string
		}{
			{"ivy@globex.example", []string{globex}},
			{"IVY@GLOBEX.EXAMPLE", []string{globex}},
			{"bob@acme.example", nil}, // Acme was removed
			{"nobody@example.com", nil},
		}
		for _, c := range cases {
			r, err := s.registry.ListTeams(ctx, &teamsv1.ListTeamsRequest{OrgId: org, MemberEmail: c.email})
			if err != nil {
				t.Fatalf("%s: %v", c.email, err)
			}
			var ids []string
			for _, tm := range r.GetTeams() {
				ids = append(ids, tm.GetTeam().GetTeamId())
			}
			if !slices.Equal(ids, c.want) {
				t.Errorf("%s: %v, want %v", c.email, ids, c.want)
			}
		}
	})

	t.Run("a code Slack refuses gives an error page", func(t *testing.T) {
		b := newBrowser(t)
		b.stopAt = s.gateway + "/slack/oauth/callback"
		p := b.get(t, s.beginInstall(t, org, globex))
		b.stopAt = ""
		cb, _ := url.Parse(p.header.Get("Location"))
		q := cb.Query()
		q.Set("code", "not-a-code-slack-issued")
		cb.RawQuery = q.Encode()
		if p := b.get(t, cb.String()); p.status != http.StatusBadRequest || !strings.Contains(p.body, "Slack did not accept") ||
			strings.Contains(p.body, "invalid_code") {
			t.Fatalf("refused code: %d %s", p.status, p.body)
		}
	})

	t.Run("tokens never appear in answers", func(t *testing.T) {
		r, err := s.registry.ListTeams(ctx, &teamsv1.ListTeamsRequest{OrgId: org, IncludeRemoved: true})
		if err != nil {
			t.Fatal(err)
		}
		j, _ := json.Marshal(r)
		if bytes.Contains(j, []byte("xox")) || len(r.GetTeams()) != 2 {
			t.Fatalf("ListTeams(include_removed): %s", j)
		}
	})

	t.Run("no token or secret ever reaches a log", func(t *testing.T) {
		logs := s.logs.String()
		if !strings.Contains(logs, "install completed") {
			t.Fatal("the log tap caught nothing")
		}
		tok, err := s.registry.GetBotToken(ctx, &teamsv1.GetBotTokenRequest{OrgId: org, TeamId: globex})
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{tok.GetBotToken(), "xoxb-", "xoxe", signingSecret, clientSecret, "ticket=", "code="} {
			if strings.Contains(logs, secret) {
				t.Errorf("the logs contain %q", secret)
			}
		}
	})
}
