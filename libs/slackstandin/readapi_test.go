package slackstandin

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

func TestReadAPIShowsWhatAPersonSees(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	tok := srv.IssueBotToken(acme)
	api := slackClient(t, srv, tok)
	ctx := testContext(t)

	ws := srv.Workspaces()
	if len(ws) != 2 || ws[0].ID != acme || ws[0].BotUserID != acmeBot || len(ws[0].Users) == 0 {
		t.Fatalf("workspaces: %+v", ws)
	}

	dm, _, _, err := api.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{bob}})
	if err != nil {
		t.Fatal(err)
	}
	ids := func(user string) []string {
		cs, err := srv.ConversationsOf(acme, user)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	if got := ids(bob); !slices.Contains(got, sales) || !slices.Contains(got, dm.ID) || slices.Contains(got, exec) {
		t.Errorf("bob sees %v: want #sales and his DM, not the private #exec", got)
	}
	if got := ids(alice); slices.Contains(got, dm.ID) {
		t.Errorf("alice sees bob's DM: %v", got)
	}
	if _, err := srv.ConversationsOf(acme, "U0NOBODY00"); err == nil {
		t.Error("an unknown user's conversations: no error")
	}

	cursor := srv.ChangeCursor()
	changed := make(chan string, 1)
	go func() {
		c, _ := srv.WaitForChange(ctx, cursor)
		changed <- c
	}()
	_, ts, err := api.PostMessageContext(ctx, sales, slack.MsgOptionText("first", false))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-changed:
		if c == cursor {
			t.Fatal("WaitForChange returned the cursor it was given")
		}
	case <-ctx.Done():
		t.Fatal("no change seen after a post")
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, sales, ts, slack.MsgOptionText("edited", false)); err != nil {
		t.Fatal(err)
	}
	if _, err := api.PostEphemeralContext(ctx, sales, bob, slack.MsgOptionText("only bob", false)); err != nil {
		t.Fatal(err)
	}
	h, err := srv.History(acme, sales)
	if err != nil {
		t.Fatal(err)
	}
	last := h[len(h)-1]
	if last.TS != ts || last.Text != "edited" {
		t.Errorf("history ends with %+v, want the edited post %s", last, ts)
	}
	if e := srv.EphemeralsFor(acme, sales, bob); len(e) != 1 || e[0].Text != "only bob" {
		t.Errorf("bob's ephemerals: %+v", e)
	}
	if e := srv.EphemeralsFor(acme, sales, alice); len(e) != 0 {
		t.Errorf("alice sees bob's ephemeral: %+v", e)
	}

	// An unchanged cursor waits; ctx ends it.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := srv.WaitForChange(short, srv.ChangeCursor()); err == nil {
		t.Error("WaitForChange with nothing new returned no error")
	}
	if _, ok := srv.File("F0NOTHERE0"); ok {
		t.Error("File found an unknown id")
	}
}
