package slackstandin

import (
	"slices"
	"strings"
	"testing"
)

func TestDefaultSeed(t *testing.T) {
	t.Parallel()
	s := DefaultSeed()
	if len(s.Workspaces) != 2 {
		t.Fatalf("%d workspaces", len(s.Workspaces))
	}
	for _, ws := range s.Workspaces {
		if len(ws.Users) != 6 {
			t.Errorf("%s: %d users", ws.ID, len(ws.Users))
		}
		var notMember, archived bool
		for _, c := range ws.Channels {
			notMember = notMember || (!c.IsPrivate && !slices.Contains(c.Members, ws.Bot.UserID))
			archived = archived || c.IsArchived
		}
		if !notMember || !archived {
			t.Errorf("%s needs a public channel without the bot and an archived one", ws.ID)
		}
	}
	// DefaultSeed hands out copies.
	s.Workspaces[0].Name = "changed"
	if DefaultSeed().Workspaces[0].Name != "Acme Corp" {
		t.Fatal("DefaultSeed shares state")
	}
}

func TestLoadSeedRefusesBrokenSeeds(t *testing.T) {
	t.Parallel()
	const bot = `"bot":{"user_id":"UB","bot_id":"BB","name":"b"}`
	tests := []struct {
		name, json, want string
	}{
		{"no workspace", `{"workspaces":[]}`, "no workspace"},
		{"unknown field", `{"workspaces":[],"extra":1}`, "unknown field"},
		{"bad team id", `{"workspaces":[{"id":"X1","name":"n","domain":"d",` + bot + `}]}`, "team id"},
		{"no bot", `{"workspaces":[{"id":"T1","name":"n","domain":"d"}]}`, "bot needs"},
		{"duplicate id", `{"workspaces":[{"id":"T1","name":"n","domain":"d",` + bot + `,"users":[{"id":"UB","name":"x"}]}]}`, "used for"},
		{"unknown member", `{"workspaces":[{"id":"T1","name":"n","domain":"d",` + bot + `,"channels":[{"id":"C1","name":"c","members":["U9"]}]}]}`, "unknown member"},
		{"duplicate email", `{"workspaces":[{"id":"T1","name":"n","domain":"d",` + bot + `,"users":[{"id":"U1","name":"a","email":"a@x"},{"id":"U2","name":"b","email":"A@x"}]}]}`, "email"},
		{"bad message ts", `{"workspaces":[{"id":"T1","name":"n","domain":"d",` + bot + `,"channels":[{"id":"C1","name":"c","members":[]}],"messages":[{"channel":"C1","user":"UB","ts":"1","text":"x"}]}]}`, "ts like"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadSeed(strings.NewReader(tt.json))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestLoadSeedMinimal(t *testing.T) {
	t.Parallel()
	seed, err := LoadSeed(strings.NewReader(`{"workspaces":[{"id":"T1","name":"Tiny","domain":"tiny",
		"bot":{"user_id":"UB","bot_id":"BB","name":"bot"},
		"users":[{"id":"U1","name":"solo","real_name":"Solo","email":"solo@tiny.example"}],
		"channels":[{"id":"C1","name":"general","members":["U1","UB"]}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, Config{Seed: seed, RateLimits: RateLimits{Disabled: true}})
	a := callForm(t, srv, "chat.postMessage", srv.IssueBotToken("T1"), map[string][]string{"channel": {"C1"}, "text": {"hi"}})
	wantOK(t, a)
}
