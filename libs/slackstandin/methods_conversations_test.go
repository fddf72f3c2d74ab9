package slackstandin

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/slack-go/slack"
)

func TestConversationsOpen(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	api := slackClient(t, srv, srv.IssueBotToken(acme))

	dm, noOp, already, err := api.OpenConversationContext(testContext(t), &slack.OpenConversationParameters{Users: []string{bob}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(dm.ID, "D") || noOp || already {
		t.Fatalf("first open: %+v noOp=%v already=%v", dm, noOp, already)
	}
	again, noOp, already, err := api.OpenConversationContext(testContext(t), &slack.OpenConversationParameters{Users: []string{bob}, ReturnIM: true})
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != dm.ID || !noOp || !already || !again.IsIM || again.User != bob {
		t.Fatalf("second open: %+v noOp=%v already=%v", again, noOp, already)
	}
	group, _, _, err := api.OpenConversationContext(testContext(t), &slack.OpenConversationParameters{Users: []string{carol, bob}})
	if err != nil {
		t.Fatal(err)
	}
	same, _, _, err := api.OpenConversationContext(testContext(t), &slack.OpenConversationParameters{Users: []string{bob, carol}})
	if err != nil || !strings.HasPrefix(group.ID, "G") || same.ID != group.ID {
		t.Fatalf("an MPIM id is stable per set of users: %s then %s (%v)", group.ID, same.ID, err)
	}
	if _, _, err := api.PostMessageContext(testContext(t), group.ID, slack.MsgOptionText("hi both", false)); err != nil {
		t.Fatalf("the bot can post in the MPIM it opened: %v", err)
	}

	imOnly := slackClient(t, srv, srv.IssueBotToken(acme, "im:write"))
	tests := []struct {
		name  string
		api   *slack.Client
		users []string
		want  string
	}{
		{"no users", api, nil, "users_list_not_supplied"},
		{"unknown user", api, []string{"U0NOPE"}, "user_not_found"},
		{"deleted user", api, []string{frank}, "user_disabled"},
		{"too many users", api, []string{alice, bob, carol, dan, eve, "U01", "U02", "U03", "U04"}, "too_many_users"},
		{"mpim needs mpim:write", imOnly, []string{alice, bob}, "missing_scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, _, err := tt.api.OpenConversationContext(testContext(t), &slack.OpenConversationParameters{Users: tt.users})
			if got := slackErr(t, err); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("resume by channel", func(t *testing.T) {
		t.Parallel()
		ch, _, already, err := api.OpenConversationContext(testContext(t), &slack.OpenConversationParameters{ChannelID: dm.ID})
		if err != nil || ch.ID != dm.ID || !already {
			t.Fatalf("%+v %v %v", ch, already, err)
		}
		_, _, _, err = api.OpenConversationContext(testContext(t), &slack.OpenConversationParameters{ChannelID: sales})
		if got := slackErr(t, err); got != "method_not_supported_for_channel_type" {
			t.Fatalf("got %q", got)
		}
	})
}

func TestConversationsListWithSlackGo(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	api := slackClient(t, srv, srv.IssueBotToken(acme))
	if _, _, _, err := api.OpenConversationContext(testContext(t), &slack.OpenConversationParameters{Users: []string{eve}}); err != nil {
		t.Fatal(err)
	}

	// list pages through with limit 2 the way an app does.
	list := func(t *testing.T, p slack.GetConversationsParameters) []string {
		t.Helper()
		p.Limit = 2
		var ids []string
		for {
			chans, next, err := api.GetConversationsContext(testContext(t), &p)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range chans {
				ids = append(ids, c.ID)
			}
			if next == "" {
				return ids
			}
			p.Cursor = next
		}
	}
	tests := []struct {
		name   string
		params slack.GetConversationsParameters
		want   []string
	}{
		{"default is public channels", slack.GetConversationsParameters{}, []string{general, sales, random, oldPipeline}},
		{"exclude archived", slack.GetConversationsParameters{ExcludeArchived: true}, []string{general, sales, random}},
		{"private shows only the bot's", slack.GetConversationsParameters{Types: []string{"private_channel"}}, []string{dealDesk}},
		{"public and private", slack.GetConversationsParameters{Types: []string{"public_channel", "private_channel"}, ExcludeArchived: true}, []string{general, sales, random, dealDesk}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := list(t, tt.params); !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("ims", func(t *testing.T) {
		t.Parallel()
		chans, _, err := api.GetConversationsContext(testContext(t), &slack.GetConversationsParameters{Types: []string{"im"}})
		if err != nil || len(chans) != 1 || !chans[0].IsIM || chans[0].User != eve {
			t.Fatalf("%+v %v", chans, err)
		}
	})
	t.Run("membership flag", func(t *testing.T) {
		t.Parallel()
		chans, _, err := api.GetConversationsContext(testContext(t), &slack.GetConversationsParameters{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range chans {
			if c.IsMember == (c.ID == random) {
				t.Fatalf("%s is_member=%v", c.ID, c.IsMember)
			}
			if c.ID == general && (c.Name != "general" || !c.IsGeneral || c.NumMembers != 6 || c.Topic.Value != "Company-wide announcements") {
				t.Fatalf("general %+v", c)
			}
		}
	})
}

func TestConversationsListErrors(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	tok := srv.IssueBotToken(acme)
	tests := []struct {
		name  string
		token string
		form  url.Values
		want  string
	}{
		{"unknown type", tok, url.Values{"types": {"public_channel,dm"}}, "invalid_types"},
		{"bad limit", tok, url.Values{"limit": {"1001"}}, "invalid_limit"},
		{"bad cursor", tok, url.Values{"cursor": {"!!"}}, "invalid_cursor"},
		{"private needs groups:read", srv.IssueBotToken(acme, "channels:read"), url.Values{"types": {"private_channel"}}, "missing_scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantError(t, callForm(t, srv, "conversations.list", tt.token, tt.form), tt.want)
		})
	}
}
