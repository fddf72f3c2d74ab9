// Package render turns a group of sales signals into the owner's Slack
// message (Block Kit): who reached out, through what, when, the summary, and
// buttons back to the customer. It is pure: the same group gives the same
// blocks.
package render

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/crmslack/crmslack/libs/blockkit"
	"github.com/crmslack/crmslack/libs/card"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"

	"github.com/crmslack/crmslack/libs/slacktext"
	"github.com/crmslack/crmslack/services/signals/internal/burst"
	"github.com/crmslack/crmslack/services/signals/internal/matrix"
)

// Action ids of the message's link buttons. Slack still sends block_actions
// for link buttons; the gateway acks them and nobody acts on them.
const (
	OpenActionID  = "signal_open"
	CallActionID  = "signal_call"
	ReplyActionID = "signal_reply"
)

// Message is a rendered message.
type Message struct {
	// Text is the plain-text fallback for notifications.
	Text   string
	Blocks json.RawMessage
}

// Config is what the service sets once.
type Config struct {
	// CRMBaseURL builds "Open in CRM" links: <base>/<module>/<id>. Empty:
	// no such button.
	CRMBaseURL string
}

const (
	maxSummary = 500 // per signal: a message is a nudge, the CRM has the rest
	maxLine    = 280
)

// Render renders g's entries (all of them).
func Render(cfg Config, g burst.Group) (Message, error) {
	if len(g.Entries) == 0 {
		return Message{}, fmt.Errorf("render: group %s has no signals", g.PostKey)
	}
	last := g.Entries[len(g.Entries)-1]
	who := customer(g, last)
	var blocks []slack.Block
	if len(g.Entries) == 1 {
		e := g.Entries[0]
		head := fmt.Sprintf("%s *%s* from *%s*", emoji(e.Channel), slacktext.Clip(what(e), 100), slacktext.Clip(who, 200))
		if e.FromPhone != "" && e.Channel == int32(matrix.Call) {
			head += " (" + slacktext.Clip(e.FromPhone, 40) + ")"
		}
		blocks = append(blocks, section(head+recordLine(g)))
		if s := detail(e); s != "" {
			blocks = append(blocks, section(quote(s)))
		}
		blocks = append(blocks, slack.NewContextBlock("", md(when(e.At)+" · SalesSignals")))
	} else {
		head := fmt.Sprintf(":rotating_light: *%d signals* from *%s*", len(g.Entries), slacktext.Clip(who, 200))
		blocks = append(blocks, section(head+recordLine(g)))
		var lines []string
		for _, e := range g.Entries {
			line := fmt.Sprintf("• %s %s *%s*", when(e.At), emoji(e.Channel), slacktext.Clip(what(e), 100))
			if s := detail(e); s != "" {
				line += " — " + slacktext.Clip(oneLine(s), maxLine)
			}
			lines = append(lines, line)
		}
		blocks = append(blocks, section(strings.Join(lines, "\n")))
		blocks = append(blocks, slack.NewContextBlock("", md(fmt.Sprintf("Grouped: %d signals since %s · SalesSignals", len(g.Entries), when(g.Started)))))
	}
	if a := actions(cfg, g); a != nil {
		blocks = append(blocks, a)
	}
	raw, err := json.Marshal(blocks)
	if err != nil {
		return Message{}, fmt.Errorf("render: marshalling blocks: %w", err)
	}
	if err := blockkit.Validate(raw); err != nil {
		return Message{}, fmt.Errorf("render: %w", err)
	}
	return Message{Text: fallback(g, who), Blocks: raw}, nil
}

// when is Slack's date token: every reader sees it in their own Slack time
// zone (the owner's), with a UTC fallback for clients that cannot.
func when(t time.Time) string {
	return fmt.Sprintf("<!date^%d^{date_short_pretty} at {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

func what(e burst.Entry) string {
	if d, ok := matrix.Lookup(matrix.Key{Channel: crmv1.SignalChannel(e.Channel), Kind: e.Kind}); ok {
		return d.Phrase
	}
	return matrix.ChannelName(crmv1.SignalChannel(e.Channel)) + " " + e.Kind
}

func emoji(c int32) string {
	switch crmv1.SignalChannel(c) {
	case matrix.Call:
		return ":telephone_receiver:"
	case matrix.Chat:
		return ":speech_balloon:"
	case matrix.Email:
		return ":email:"
	case matrix.SupportTicket:
		return ":ticket:"
	case matrix.Social:
		return ":loudspeaker:"
	case matrix.Website:
		return ":globe_with_meridians:"
	case matrix.Survey:
		return ":bar_chart:"
	case matrix.Campaign:
		return ":mega:"
	}
	return ":bell:"
}

// customer names who reached out: the signal's from, else the record.
func customer(g burst.Group, e burst.Entry) string {
	if strings.TrimSpace(e.From) != "" {
		return e.From
	}
	if g.Record.Name != "" {
		return g.Record.Name
	}
	return "a customer"
}

func recordLine(g burst.Group) string {
	if g.Record.Name == "" && g.Record.ID == "" {
		return ""
	}
	name := g.Record.Name
	if name == "" {
		name = g.Record.ID
	}
	return "\n" + slacktext.Clip(singular(g.Record.Module), 40) + ": " + slacktext.Clip(name, 200)
}

func singular(module string) string {
	switch module {
	case "Leads":
		return "Lead"
	case "Contacts":
		return "Contact"
	case "Accounts":
		return "Account"
	case "Deals":
		return "Deal"
	}
	return module
}

func detail(e burst.Entry) string {
	s := strings.TrimSpace(e.Summary)
	if t := strings.TrimSpace(e.Title); t != "" {
		if s == "" {
			return t
		}
		return t + ": " + s
	}
	return s
}

func quote(s string) string {
	lines := strings.Split(slacktext.Clip(s, maxSummary), "\n")
	return ">" + strings.Join(lines, "\n>")
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func actions(cfg Config, g burst.Group) *slack.ActionBlock {
	var elems []slack.BlockElement
	button := func(id, text, u string) {
		elems = append(elems, slack.NewButtonBlockElement(id, "", slack.NewTextBlockObject(slack.PlainTextType, text, false, false)).WithURL(u))
	}
	if cfg.CRMBaseURL != "" && g.Record.Module != "" && g.Record.ID != "" {
		if u := card.DefaultURL(cfg.CRMBaseURL, g.Record.Module, g.Record.ID); webURL(u) {
			button(OpenActionID, "Open in CRM", u)
		}
	}
	// The latest signal's way back wins: that is the conversation going on.
	var phone, reply string
	for _, e := range g.Entries {
		if e.Channel == int32(matrix.Call) && e.FromPhone != "" {
			phone = e.FromPhone
		}
		if (e.Channel == int32(matrix.Email) || e.Channel == int32(matrix.Chat)) && webURL(e.URL) {
			reply = e.URL
		}
	}
	if u := telURL(phone); u != "" {
		button(CallActionID, "Call back", u)
	}
	if reply != "" {
		button(ReplyActionID, "Reply", reply)
	}
	if len(elems) == 0 {
		return nil
	}
	return slack.NewActionBlock("signal_actions", elems...)
}

func webURL(u string) bool {
	if u == "" || len(u) > blockkit.MaxURL {
		return false
	}
	p, err := url.Parse(u)
	return err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Host != ""
}

// telURL is a tel: link of the number's digits (and a leading +), or ""
// when too few digits remain to be a phone number.
func telURL(phone string) string {
	var b strings.Builder
	for i, r := range strings.TrimSpace(phone) {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
			b.WriteRune(r)
		}
	}
	digits := strings.TrimPrefix(b.String(), "+")
	if len(digits) < 3 || len(digits) > 20 {
		return ""
	}
	return "tel:" + b.String()
}

func fallback(g burst.Group, who string) string {
	if len(g.Entries) == 1 {
		return slacktext.Clip(what(g.Entries[0])+" from "+who, 300)
	}
	return slacktext.Clip(fmt.Sprintf("%d signals from %s", len(g.Entries), who), 300)
}

func section(text string) *slack.SectionBlock {
	return slack.NewSectionBlock(md(cut(text, blockkit.MaxSectionText)), nil, nil)
}

func md(s string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
}

// cut bounds an already escaped text, cutting at a line end when it can.
func cut(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)[:max-1]
	if i := strings.LastIndex(string(r), "\n"); i > 0 {
		return string(r)[:i] + "\n" + slacktext.Ellipsis
	}
	return slacktext.Cut(s, max)
}
