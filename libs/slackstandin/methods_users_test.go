package slackstandin

import (
	"net/url"
	"slices"
	"testing"

	"github.com/slack-go/slack"
)

func TestUsersListPaginatesWithSlackGo(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	api := slackClient(t, srv, srv.IssueBotToken(acme))
	users, err := api.GetUsersContext(testContext(t), slack.GetUsersOptionLimit(2))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, u := range users {
		ids = append(ids, u.ID)
	}
	want := []string{alice, bob, carol, dan, eve, frank, acmeBot}
	if !slices.Equal(ids, want) {
		t.Fatalf("users %v, want %v", ids, want)
	}
	if calls := srv.Stats().Calls["users.list"]; calls != 4 {
		t.Fatalf("7 users by 2 take 4 pages, took %d calls", calls)
	}
	byID := map[string]slack.User{}
	for _, u := range users {
		byID[u.ID] = u
	}
	if a := byID[alice]; a.Profile.Email != "alice@acme.example" || a.RealName != "Alice Johnson" || a.TZ != "America/New_York" || !a.IsAdmin || a.TeamID != acme {
		t.Fatalf("alice %+v", a)
	}
	if !byID[frank].Deleted || !byID[acmeBot].IsBot || byID[acmeBot].Profile.BotID != "B0ACMEBOT1" {
		t.Fatalf("frank %+v bot %+v", byID[frank], byID[acmeBot])
	}
}

func TestUsersListCursor(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	tok := srv.IssueBotToken(acme)
	first := callForm(t, srv, "users.list", tok, url.Values{"limit": {"3"}})
	wantOK(t, first)
	cursor := first.body["response_metadata"].(map[string]any)["next_cursor"].(string)
	if len(first.body["members"].([]any)) != 3 || cursor == "" {
		t.Fatalf("first page %v", first.body)
	}
	second := callForm(t, srv, "users.list", tok, url.Values{"limit": {"10"}, "cursor": {cursor}})
	wantOK(t, second)
	if len(second.body["members"].([]any)) != 4 || second.body["response_metadata"].(map[string]any)["next_cursor"] != "" {
		t.Fatalf("last page %v", second.body)
	}
	wantError(t, callForm(t, srv, "users.list", tok, url.Values{"cursor": {"bm9wZQ=="}}), "invalid_cursor")
	wantError(t, callForm(t, srv, "users.list", tok, url.Values{"limit": {"many"}}), "invalid_limit")
}

func TestUsersInfoAndLookup(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	api := slackClient(t, srv, srv.IssueBotToken(acme))
	noEmail := slackClient(t, srv, srv.IssueBotToken(acme, "users:read"))

	u, err := api.GetUserInfoContext(testContext(t), carol)
	if err != nil {
		t.Fatal(err)
	}
	if u.Name != "carol" || u.Profile.Email != "carol@acme.example" || u.TZ != "America/Los_Angeles" {
		t.Fatalf("carol %+v", u)
	}
	u, err = noEmail.GetUserInfoContext(testContext(t), carol)
	if err != nil || u.Profile.Email != "" {
		t.Fatalf("without users:read.email the email is hidden: %+v %v", u, err)
	}
	u, err = api.GetUserByEmailContext(testContext(t), "Dan@Acme.Example")
	if err != nil || u.ID != dan {
		t.Fatalf("lookup is case-insensitive: %+v %v", u, err)
	}

	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"info unknown user", func() error { _, err := api.GetUserInfoContext(testContext(t), "U0NOPE"); return err }, "user_not_found"},
		{"info other team's user", func() error { _, err := api.GetUserInfoContext(testContext(t), ivy); return err }, "user_not_found"},
		{"lookup unknown email", func() error { _, err := api.GetUserByEmailContext(testContext(t), "nobody@acme.example"); return err }, "users_not_found"},
		{"lookup other team's email", func() error { _, err := api.GetUserByEmailContext(testContext(t), "ivy@globex.example"); return err }, "users_not_found"},
		{"lookup without users:read.email", func() error { _, err := noEmail.GetUserByEmailContext(testContext(t), "dan@acme.example"); return err }, "missing_scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := slackErr(t, tt.call()); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}
