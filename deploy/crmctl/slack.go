package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// defaultStandin is where `make run` serves the Slack stand-in;
// SLACK_STANDIN_URL overrides it.
const defaultStandin = "http://127.0.0.1:8090"

// shareActionID is the action_id of the "Share this record" button
// (libs/card.ShareActionID).
const shareActionID = "card_share"

const slackUsage = `usage:
  crmctl slack zcrm [-standin URL] [-team T] -channel C -user U [-command /zcrm] [-wait D] [-json] TEXT...
  crmctl slack click [-standin URL] [-team T] -channel C -user U [-action card_share] [-block B]
                     [-message-ts TS] [-response-url URL] [-wait D] [-json] VALUE
Team, channel and user are ids or names (a user also by email) of the stand-in's seed.
zcrm prints, under each record, the click command that shares it, ready to paste;
-json prints the answer, those commands and what followed as one JSON object.`

// slackCmd acts as a Slack user through the stand-in's /_standin/slash and
// /_standin/click: the stand-in signs and sends to the gateway.
func slackCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("want zcrm or click\n" + slackUsage)
	}
	switch args[0] {
	case "zcrm":
		return zcrmCmd(ctx, args[1:], stdout)
	case "click":
		return clickCmd(ctx, args[1:], stdout)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, slackUsage)
		return nil
	}
	return fmt.Errorf("unknown subcommand %q\n%s", args[0], slackUsage)
}

// actFlags are the flags both subcommands take.
type actFlags struct {
	standin, team, channel, user string
	wait                         time.Duration
	json                         bool
}

func (f *actFlags) register(fs *flag.FlagSet, wait time.Duration, waitHelp string) {
	standin := os.Getenv("SLACK_STANDIN_URL")
	if standin == "" {
		standin = defaultStandin
	}
	fs.StringVar(&f.standin, "standin", standin, "base URL of the Slack stand-in (SLACK_STANDIN_URL)")
	fs.StringVar(&f.team, "team", "", "workspace id, name or domain (default: the user's)")
	fs.StringVar(&f.channel, "channel", "", "channel id or name")
	fs.StringVar(&f.user, "user", "", "user id, name or email")
	fs.DurationVar(&f.wait, "wait", wait, waitHelp)
	fs.BoolVar(&f.json, "json", false, "print one JSON object (answer, share commands, later messages) for scripts")
}

func (f *actFlags) form() url.Values {
	return url.Values{"team": {f.team}, "channel": {f.channel}, "user": {f.user}}
}

func zcrmCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("slack zcrm", flag.ContinueOnError)
	var f actFlags
	f.register(fs, 0, "also wait this long for an answer that follows through the response_url")
	command := fs.String("command", "/zcrm", "the slash command")
	if err := fs.Parse(args); err != nil {
		return err
	}
	form := f.form()
	form.Set("command", *command)
	form.Set("text", strings.Join(fs.Args(), " "))
	return actAndShow(ctx, &f, "/_standin/slash", form, stdout)
}

func clickCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("slack click", flag.ContinueOnError)
	var f actFlags
	f.register(fs, 5*time.Second, "wait this long for what the click posts (0: do not wait)")
	action := fs.String("action", shareActionID, "the button's action_id")
	block := fs.String("block", "", "the button's block_id")
	messageTS := fs.String("message-ts", "", "ts of the channel message holding the button (none: an ephemeral answer)")
	responseURL := fs.String("response-url", "", "response_url of the answer holding the button; gives team, channel and user")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("want one VALUE, got %d arguments (quote the value)\n%s", fs.NArg(), slackUsage)
	}
	form := f.form()
	form.Set("action_id", *action)
	form.Set("value", fs.Arg(0))
	form.Set("block_id", *block)
	form.Set("message_ts", *messageTS)
	form.Set("response_url", *responseURL)
	if *action == shareActionID {
		form.Set("label", "Share this record")
	}
	return actAndShow(ctx, &f, "/_standin/click", form, stdout)
}

// actResult is the stand-in's answer (libs/slackstandin.ActResult).
type actResult struct {
	OK          bool            `json:"ok"`
	Error       string          `json:"error"`
	Detail      string          `json:"detail"`
	Status      int             `json:"status"`
	Body        json.RawMessage `json:"body"`
	TookMS      float64         `json:"took_ms"`
	Team        string          `json:"team"`
	Channel     string          `json:"channel"`
	User        string          `json:"user"`
	ResponseURL string          `json:"response_url"`
}

// message is a Slack message: an app's answer or a recorded message.
type message struct {
	Kind    string          `json:"kind"`
	Team    string          `json:"team"`
	Channel string          `json:"channel"`
	Text    string          `json:"text"`
	Blocks  json.RawMessage `json:"blocks"`
}

func actAndShow(ctx context.Context, f *actFlags, path string, form url.Values, stdout io.Writer) error {
	base := strings.TrimSuffix(f.standin, "/")
	var seen int
	if f.wait > 0 {
		msgs, err := recorded(ctx, base)
		if err != nil {
			return err
		}
		seen = len(msgs)
	}
	var res actResult
	if err := postForm(ctx, base+path, form, &res); err != nil {
		return err
	}
	if !res.OK {
		return fmt.Errorf("the stand-in refused: %s: %s", res.Error, res.Detail)
	}
	if res.Status != http.StatusOK {
		return fmt.Errorf("the app answered HTTP %d: %s", res.Status, bodyText(res.Body))
	}
	click := clickCommand(f, res)
	var answer message
	answered := json.Unmarshal(res.Body, &answer) == nil && (answer.Text != "" || len(answer.Blocks) > 0)
	var later []message
	if f.wait > 0 {
		var err error
		if later, err = waitForMessages(ctx, base, seen, res.Team, res.Channel, f.wait); err != nil {
			return err
		}
	}
	if f.json {
		return printJSON(stdout, res, answered, answer, later, click)
	}
	if answered {
		show(stdout, answer, click)
	} else {
		fmt.Fprintf(stdout, "The app answered HTTP 200 in %.0f ms with no message.\n", res.TookMS)
	}
	if f.wait <= 0 {
		return nil
	}
	if len(later) == 0 {
		fmt.Fprintf(stdout, "Nothing posted in %s within %s; see %s/_standin/messages.\n", res.Channel, f.wait, base)
	}
	for _, m := range later {
		fmt.Fprintf(stdout, "-- %s in %s:\n", m.Kind, m.Channel)
		show(stdout, m, click)
	}
	return nil
}

// shareLine is a record card of a message and the command that clicks its
// Share button.
type shareLine struct {
	Title   string `json:"title"`
	Value   string `json:"value"`
	Command string `json:"command"`
}

// clickCommand is the start of a click, as this program was invoked, on a
// button of the answer res: as the same user in the same channel, through
// the answer's response_url, so pasted as is it acts as the real click.
func clickCommand(f *actFlags, res actResult) string {
	cmd := program() + " slack click"
	if f.standin != defaultStandin {
		cmd += " -standin " + shellQuote(f.standin)
	}
	cmd += fmt.Sprintf(" -team %s -channel %s -user %s", res.Team, res.Channel, res.User)
	if res.ResponseURL != "" {
		cmd += " -response-url " + shellQuote(res.ResponseURL)
	}
	return cmd
}

// program is how to run crmctl again: "go run ./deploy/crmctl" under go
// run (whose binary is temporary), else the path it was started by.
func program() string {
	if strings.Contains(os.Args[0], "go-build") {
		return "go run ./deploy/crmctl"
	}
	return os.Args[0]
}

// shares lists a message's record cards and their Share clicks.
func shares(m message, click string) []shareLine {
	var blocks []struct {
		Type     string                 `json:"type"`
		Text     *struct{ Text string } `json:"text"`
		Elements []struct {
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
		} `json:"elements"`
		BlockID string `json:"block_id"`
	}
	if json.Unmarshal(m.Blocks, &blocks) != nil {
		return nil
	}
	var out []shareLine
	title := ""
	for _, b := range blocks {
		switch {
		case (b.Type == "header" || b.Type == "section") && b.Text != nil:
			title = plainText(b.Text.Text)
		case b.Type == "actions":
			for _, e := range b.Elements {
				if e.ActionID != shareActionID {
					continue
				}
				cmd := click
				if b.BlockID != "" {
					cmd += " -block " + shellQuote(b.BlockID)
				}
				out = append(out, shareLine{Title: title, Value: e.Value, Command: cmd + " " + shellQuote(e.Value)})
			}
		}
	}
	return out
}

// show prints a message's text and, for each record card, its title and
// the command that clicks its Share button.
func show(w io.Writer, m message, click string) {
	fmt.Fprintln(w, m.Text)
	for _, l := range shares(m, click) {
		fmt.Fprintf(w, "  • %s\n    share: %s\n", l.Title, l.Command)
	}
}

// printJSON prints the outcome as one object, for scripts.
func printJSON(w io.Writer, res actResult, answered bool, answer message, later []message, click string) error {
	out := struct {
		Status      int         `json:"status"`
		TookMS      float64     `json:"took_ms"`
		Team        string      `json:"team"`
		Channel     string      `json:"channel"`
		User        string      `json:"user"`
		ResponseURL string      `json:"response_url,omitempty"`
		Answer      *message    `json:"answer,omitempty"`
		Shares      []shareLine `json:"shares"`
		Later       []message   `json:"later,omitempty"`
	}{Status: res.Status, TookMS: res.TookMS, Team: res.Team, Channel: res.Channel, User: res.User, ResponseURL: res.ResponseURL, Later: later, Shares: []shareLine{}}
	if answered {
		out.Answer = &answer
		out.Shares = append(out.Shares, shares(answer, click)...)
	}
	for _, m := range later {
		out.Shares = append(out.Shares, shares(m, click)...)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// plainText is mrkdwn without emphasis and entities, on one line.
func plainText(s string) string {
	s = strings.NewReplacer("*", "", "_", "", "&lt;", "<", "&gt;", ">", "&amp;", "&", "\n", " ").Replace(s)
	return strings.TrimSpace(s)
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// bodyText is a JSON string's text, or the JSON itself.
func bodyText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.TrimSpace(s)
	}
	return string(raw)
}

func postForm(ctx context.Context, u string, form url.Values, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return doJSON(req, into)
}

func doJSON(req *http.Request, into any) error {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reaching the Slack stand-in (is `make run` running?): %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("reading the stand-in's answer: %w", err)
	}
	if err := json.NewDecoder(bytes.NewReader(raw)).Decode(into); err != nil {
		return fmt.Errorf("the stand-in answered HTTP %d, not JSON: %.200s", resp.StatusCode, raw)
	}
	return nil
}

// recorded returns every message the stand-in recorded, oldest first.
func recorded(ctx context.Context, base string) ([]message, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/_standin/messages", nil)
	if err != nil {
		return nil, err
	}
	var out struct {
		Messages []message `json:"messages"`
	}
	if err := doJSON(req, &out); err != nil {
		return nil, err
	}
	return out.Messages, nil
}

// waitForMessages polls for messages recorded after the first seen in the
// team's channel, until some arrive or wait is over.
func waitForMessages(ctx context.Context, base string, seen int, team, channel string, wait time.Duration) ([]message, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		msgs, err := recorded(ctx, base)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil
			}
			return nil, err
		}
		var fresh []message
		for _, m := range msgs[min(seen, len(msgs)):] {
			if m.Team == team && m.Channel == channel {
				fresh = append(fresh, m)
			}
		}
		if len(fresh) > 0 {
			return fresh, nil
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-tick.C:
		}
	}
}
