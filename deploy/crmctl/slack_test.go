package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || lines[0] != "2 leads" || lines[1] != "  • Emma Watson" || lines[3] != "  • John O'Watson" {
		t.Fatalf("output:\n%s", out)
	}
	// The share line is a command to paste as it is: the same program,
	// stand-in, user, channel and response_url.
	prefix := "    share: go run ./deploy/crmctl slack click -standin '" + sa.URL() + "' -team T0ACME0001 -channel C0ACMESALE -user U0ACME0BOB -response-url '" + sa.URL() + "/commands/T0ACME0001/"
	for i, id := range map[int]string{2: "l1", 4: "l2"} {
		if !strings.HasPrefix(lines[i], prefix) || !strings.HasSuffix(lines[i], `' '{"o":"acme","m":"Leads","i":"`+id+`"}'`) {
			t.Fatalf("share line %q, want it to start with %q", lines[i], prefix)
		}
	}

	// The printed click, pasted as it is (without the program's name).
	args, err := shellWords(strings.TrimPrefix(lines[2], "    share: go run ./deploy/crmctl "))
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code = crmctl(t, args...)
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

// shellWords splits a line of single-quoted words as a shell would.
func shellWords(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\'':
			quoted = false
		case quoted:
			cur.WriteByte(c)
		case c == '\'':
			quoted, inWord = true, true
		case c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
			inWord = true
		case c == ' ':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("unterminated quote in %q", line)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// -json gives scripts the answer and each record's share command.
func TestSlackZcrmJSON(t *testing.T) {
	t.Parallel()
	appURL, _ := fakeGateway(t, "local-secret")
	sa := startStandin(t, appURL)
	out, errOut, code := crmctl(t, "slack", "zcrm", "-standin", sa.URL(), "-json", "-user", "bob@acme.example", "-channel", "sales", "leads")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got struct {
		Status      int    `json:"status"`
		User        string `json:"user"`
		ResponseURL string `json:"response_url"`
		Answer      struct {
			Text string `json:"text"`
		} `json:"answer"`
		Shares []shareLine `json:"shares"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if got.Status != 200 || got.User != "U0ACME0BOB" || got.Answer.Text != "2 leads" || got.ResponseURL == "" || len(got.Shares) != 2 ||
		got.Shares[0].Title != "Emma Watson" || got.Shares[0].Value != `{"o":"acme","m":"Leads","i":"l1"}` || !strings.Contains(got.Shares[0].Command, "slack click") {
		t.Fatalf("json %+v", got)
	}
}
