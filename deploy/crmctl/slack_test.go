package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/crmslack/crmslack/libs/slackstandin"
)

// resultsAnswer is a /zcrm answer shaped like the query service's: a list
// header, then per record a section and an actions block with "Open in
// CRM" and "Share this record".
const resultsAnswer = `{"response_type":"ephemeral","text":"2 leads","blocks":[
{"type":"header","text":{"type":"plain_text","text":"2 of 2 leads"}},
{"type":"section","text":{"type":"mrkdwn","text":"*Emma Watson*"},"fields":[{"type":"mrkdwn","text":"*Company*\nZylker &amp; Sons"}]},
{"type":"actions","elements":[{"type":"button","action_id":"card_open","text":{"type":"plain_text","text":"Open in CRM"},"url":"https://crm.example/l1"},
 {"type":"button","action_id":"card_share","text":{"type":"plain_text","text":"Share this record"},"value":"{\"o\":\"acme\",\"m\":\"Leads\",\"i\":\"l1\"}"}]},
{"type":"divider"},
{"type":"section","text":{"type":"mrkdwn","text":"*John O'Watson*"}},
{"type":"actions","elements":[{"type":"button","action_id":"card_share","text":{"type":"plain_text","text":"Share this record"},"value":"{\"o\":\"acme\",\"m\":\"Leads\",\"i\":\"l2\"}"}]}]}`

// fakeGateway verifies signatures as the gateway does (slack-go), answers
// /slack/commands with resultsAnswer and, for a Share click, posts the
// record in the channel through the click's response_url.
func fakeGateway(t *testing.T, secret string) (string, <-chan slack.InteractionCallback) {
	t.Helper()
	clicks := make(chan slack.InteractionCallback, 4)
	verified := func(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
		v, err := slack.NewSecretsVerifier(r.Header, secret)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return nil, false
		}
		body, _ := io.ReadAll(io.TeeReader(r.Body, &v))
		if err := v.Ensure(); err != nil {
			http.Error(w, "invalid request signature", http.StatusUnauthorized)
			return nil, false
		}
		return body, true
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /slack/commands", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := verified(w, r); !ok {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, resultsAnswer)
	})
	mux.HandleFunc("POST /slack/interactions", func(w http.ResponseWriter, r *http.Request) {
		body, ok := verified(w, r)
		if !ok {
			return
		}
		form, _ := url.ParseQuery(string(body))
		var cb slack.InteractionCallback
		if err := json.Unmarshal([]byte(form.Get("payload")), &cb); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		clicks <- cb
		w.WriteHeader(http.StatusOK)
		go func() {
			raw, _ := json.Marshal(map[string]string{"response_type": "in_channel", "text": "Bob shared Emma Watson"})
			resp, err := http.Post(cb.ResponseURL, "application/json", bytes.NewReader(raw))
			if err == nil {
				resp.Body.Close()
			}
		}()
	})
	app := httptest.NewServer(mux)
	t.Cleanup(app.Close)
	return app.URL, clicks
}

func startStandin(t *testing.T, appURL string) *slackstandin.Server {
	t.Helper()
	sa, err := slackstandin.New(slackstandin.Config{AppURL: appURL, App: slackstandin.AppConfig{SigningSecret: "local-secret"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := sa.Start(""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sa.Close)
	return sa
}

func crmctl(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, args, nil, &out, &errb)
	return out.String(), errb.String(), code
}

func TestSlackZcrmThenClickShare(t *testing.T) {
	t.Parallel()
	appURL, clicks := fakeGateway(t, "local-secret")
	sa := startStandin(t, appURL)

	out, errOut, code := crmctl(t, "slack", "zcrm", "-standin", sa.URL(), "-user", "bob@acme.example", "-channel", "sales", "leads", "[last name]=[watson]")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := `2 leads
  • Emma Watson
    share: crmctl slack click -team T0ACME0001 -channel C0ACMESALE -user U0ACME0BOB '{"o":"acme","m":"Leads","i":"l1"}'
  • John O'Watson
    share: crmctl slack click -team T0ACME0001 -channel C0ACMESALE -user U0ACME0BOB '{"o":"acme","m":"Leads","i":"l2"}'
`
	if out != want {
		t.Fatalf("output\n%s\nwant\n%s", out, want)
	}

	// The printed click, as a user would paste it.
	out, errOut, code = crmctl(t, "slack", "click", "-standin", sa.URL(), "-team", "T0ACME0001", "-channel", "C0ACMESALE", "-user", "U0ACME0BOB", `{"o":"acme","m":"Leads","i":"l1"}`)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	cb := <-clicks
	acts := cb.ActionCallback.BlockActions
	if cb.User.ID != "U0ACME0BOB" || cb.Channel.ID != "C0ACMESALE" || len(acts) != 1 || acts[0].ActionID != "card_share" || acts[0].Value != `{"o":"acme","m":"Leads","i":"l1"}` {
		t.Fatalf("click %+v", cb)
	}
	for _, w := range []string{"with no message", "-- response_url in C0ACMESALE:", "Bob shared Emma Watson"} {
		if !strings.Contains(out, w) {
			t.Errorf("click output lacks %q:\n%s", w, out)
		}
	}
}

func TestSlackErrorsAreClear(t *testing.T) {
	t.Parallel()
	appURL, _ := fakeGateway(t, "another-secret")
	sa := startStandin(t, appURL)
	noApp := startStandin(t, "")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown user", []string{"zcrm", "-standin", sa.URL(), "-user", "nobody", "-channel", "sales", "help"}, `unknown_user: no user "nobody"`},
		{"no app configured", []string{"zcrm", "-standin", noApp.URL(), "-user", "bob", "-channel", "sales", "help"}, "app_url_not_configured"},
		{"the app refuses the signature", []string{"zcrm", "-standin", sa.URL(), "-user", "bob", "-channel", "sales", "help"}, "the app answered HTTP 401: invalid request signature"},
		{"no stand-in", []string{"zcrm", "-standin", "http://127.0.0.1:1", "-user", "bob", "-channel", "sales", "help"}, "is `make run` running?"},
		{"two values", []string{"click", "-standin", sa.URL(), "-user", "bob", "-channel", "sales", "a", "b"}, "want one VALUE"},
		{"unknown subcommand", []string{"type"}, `unknown subcommand "type"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, errOut, code := crmctl(t, append([]string{"slack"}, tt.args...)...)
			if code != 1 || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d, stderr %q, want %q", code, errOut, tt.want)
			}
		})
	}
}
