package slackhttp

import (
	"errors"
	"net/url"
	"testing"
)

func TestParseSlashCommand(t *testing.T) {
	t.Parallel()
	c, err := ParseSlashCommand(command("T0ACME0001"))
	if err != nil || c.TeamID != "T0ACME0001" || c.Command != "/zcrm" || c.Text != "leads [last name]=[watson]" || c.TriggerID == "" {
		t.Fatalf("%+v %v", c, err)
	}
	for name, body := range map[string]string{
		"not a form":   "%zz",
		"no team":      "user_id=U1&command=%2Fzcrm",
		"bad team":     "team_id=T1.*&user_id=U1&command=%2Fzcrm",
		"no command":   "team_id=T0ACME0001&user_id=U1",
		"no user":      "team_id=T0ACME0001&command=%2Fzcrm",
		"huge text":    "team_id=T0ACME0001&user_id=U1&command=%2Fzcrm&text=" + string(make([]byte, 4001)),
		"lowercase id": "team_id=t0acme&user_id=U1&command=%2Fzcrm",
	} {
		if _, err := ParseSlashCommand([]byte(body)); !errors.Is(err, ErrBadPayload) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestParseEvent(t *testing.T) {
	t.Parallel()
	e, err := ParseEvent(event("T0ACME0001", "tokens_revoked", "Ev0001"))
	if err != nil || e.Event.Type != "tokens_revoked" || e.Event.Tokens.Bot[0] != "U0ACMEBOT1" {
		t.Fatalf("%+v %v", e, err)
	}
	for name, body := range map[string]string{
		"not JSON":          "{",
		"unknown type":      `{"type":"app_rate_limited"}`,
		"no challenge":      `{"type":"url_verification"}`,
		"no event id":       `{"type":"event_callback","team_id":"T0ACME0001","event":{"type":"app_uninstalled"}}`,
		"no inner type":     `{"type":"event_callback","team_id":"T0ACME0001","event_id":"Ev01","event":{}}`,
		"team with a dot":   `{"type":"event_callback","team_id":"T0A.B","event_id":"Ev01","event":{"type":"x"}}`,
		"event id with dot": `{"type":"event_callback","team_id":"T0ACME0001","event_id":"Ev.1","event":{"type":"x"}}`,
	} {
		if _, err := ParseEvent([]byte(body)); !errors.Is(err, ErrBadPayload) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestParseInteraction(t *testing.T) {
	t.Parallel()
	in, err := ParseInteraction(interaction("T0ACME0001"))
	if err != nil || in.ActionID != "share" || in.Value != "Deals:42" || in.MessageTS != "1700000000.000100" || in.ChannelID != "C0ACMESALE" {
		t.Fatalf("%+v %v", in, err)
	}
	for name, body := range map[string]string{
		"no payload":       "x=1",
		"payload not JSON": url.Values{"payload": {"{"}}.Encode(),
		"no type":          url.Values{"payload": {`{"team":{"id":"T0ACME0001"}}`}}.Encode(),
		"no action":        url.Values{"payload": {`{"type":"block_actions","team":{"id":"T0ACME0001"},"user":{"id":"U1"}}`}}.Encode(),
		"bad team":         url.Values{"payload": {`{"type":"block_actions","team":{"id":"*"}}`}}.Encode(),
	} {
		if _, err := ParseInteraction([]byte(body)); !errors.Is(err, ErrBadPayload) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// The parsers read bodies whose signature verified, but a bug in Slack,
// a leaked secret or a fuzzer must still not make them panic or yield a
// team id that would change a subject's shape.
func checkTeamToken(t *testing.T, team string) {
	t.Helper()
	if !teamIDRe.MatchString(team) {
		t.Fatalf("accepted team id %q", team)
	}
}

func FuzzParseEvent(f *testing.F) {
	f.Add(event("T0ACME0001", "app_uninstalled", "Ev0001"))
	f.Add([]byte(`{"type":"url_verification","challenge":"x"}`))
	f.Add([]byte(`{"type":"event_callback","team_id":"T0A","event_id":"Ev12","event":{"type":"tokens_revoked","tokens":{"bot":["U1"]}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := ParseEvent(body)
		if err == nil && e.Type == TypeEventCallback {
			checkTeamToken(t, e.TeamID)
			if !eventIDRe.MatchString(e.EventID) {
				t.Fatalf("accepted event id %q", e.EventID)
			}
		}
	})
}

func FuzzParseSlashCommand(f *testing.F) {
	f.Add(command("T0ACME0001"))
	f.Add([]byte("team_id=T0ACME0001&user_id=U1&command=%2Fzcrm&text=a%26b"))
	f.Fuzz(func(t *testing.T, body []byte) {
		if c, err := ParseSlashCommand(body); err == nil {
			checkTeamToken(t, c.TeamID)
		}
	})
}

func FuzzParseInteraction(f *testing.F) {
	f.Add(interaction("T0ACME0001"))
	f.Add([]byte("payload=%7B%22type%22%3A%22view_submission%22%2C%22user%22%3A%7B%22team_id%22%3A%22T0A%22%7D%7D"))
	f.Fuzz(func(t *testing.T, body []byte) {
		if in, err := ParseInteraction(body); err == nil {
			checkTeamToken(t, in.TeamID)
		}
	})
}
