// Package render turns the outcomes of a /zcrm command into Block Kit
// messages: results as compact record cards (libs/card, the renderer record
// sharing uses too) with a "Share this record" button each, the friendly
// "no match" and refusal answers that say how the query was understood, the
// usage card, and the answer for a Slack user who is no CRM user. It is
// pure: the same input gives the same blocks.
package render

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/crmslack/crmslack/libs/card"
	"github.com/crmslack/crmslack/libs/slacktext"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

// NotACRMUserMessage is what a Slack user without a matching CRM user reads.
const NotACRMUserMessage = "You need a CRM user in this org with the same email as your Slack account"

// Answer is a rendered message: blocks and the plain-text fallback.
type Answer struct {
	Text   string
	Blocks []slack.Block
}

// JSON returns the blocks as the JSON array Slack takes.
func (a Answer) JSON() ([]byte, error) {
	b, err := json.Marshal(slack.Blocks{BlockSet: a.Blocks})
	if err != nil {
		return nil, fmt.Errorf("encoding blocks: %w", err)
	}
	return b, nil
}

// Renderer holds what every answer shares.
type Renderer struct {
	// Card configures record cards: the CRM base URL for "Open in CRM"
	// links of records that carry no URL of their own.
	Card card.Config
	// Buttons signs the Share buttons (SHARE_BUTTON_KEY).
	Buttons *card.Buttons
}

// code shows what a user typed as inline code; a backtick would end the
// span, so it becomes a quote.
func code(s string) string { return "`" + slacktext.Escape(strings.ReplaceAll(s, "`", "'")) + "`" }

func section(mrkdwn string) slack.Block {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, mrkdwn, false, false), nil, nil)
}

func contextBlock(lines ...string) slack.Block {
	elems := make([]slack.MixedElement, len(lines))
	for i, l := range lines {
		elems[i] = slack.NewTextBlockObject(slack.MarkdownType, l, false, false)
	}
	return slack.NewContextBlock("", elems...)
}

func understoodLine(understood string) string {
	return "Understood as: " + slacktext.Escape(understood)
}

// noun is the module's plural label in lower case ("leads").
func noun(schema *crmv1.ModuleSchema, module string) string {
	if l := strings.TrimSpace(schema.GetPluralLabel()); l != "" {
		return strings.ToLower(l)
	}
	if module == "" {
		module = schema.GetModule()
	}
	return strings.ToLower(module)
}

// Results renders up to card.MaxListCards records of to.Org as compact
// cards, each with "Open in CRM" and "Share this record" (a button only
// to.User may use, in to.Team and to.Channel), the number matched in all,
// and how the query was understood.
func (r Renderer) Results(to card.Grant, schema *crmv1.ModuleSchema, records []*crmv1.Record, total int, understood string) (Answer, error) {
	if r.Buttons == nil {
		return Answer{}, errors.New("rendering results: no share button key")
	}
	var signErr error
	c, err := card.RenderList(card.ListInput{
		Config:  r.Card,
		Schema:  schema,
		Records: records,
		Total:   total,
		Buttons: func(rec *crmv1.Record) []card.Button {
			g := to
			g.Module, g.ID = rec.GetModule(), rec.GetId()
			b, err := r.Buttons.ShareButton(g)
			if err != nil {
				signErr = err
				return nil
			}
			return []card.Button{b}
		},
	})
	if err == nil {
		err = signErr
	}
	if err != nil {
		return Answer{}, fmt.Errorf("rendering results: %w", err)
	}
	lines := []string{understoodLine(understood)}
	shown := min(len(records), card.MaxListCards)
	if total > shown {
		lines = append(lines, fmt.Sprintf("Only the first %d of %d are shown: add criteria to narrow the search.", shown, total))
	}
	blocks := append(c.Blocks, contextBlock(lines...))
	return Answer{Text: c.Text + "\n" + "Understood as: " + understood, Blocks: blocks}, nil
}

// NoMatch renders the answer to a search that found nothing.
func NoMatch(schema *crmv1.ModuleSchema, module, understood string) Answer {
	n := noun(schema, module)
	msg := fmt.Sprintf("No %s match your search.", n)
	return Answer{
		Text: msg + " Understood as: " + understood,
		Blocks: []slack.Block{
			section(":mag: " + slacktext.Escape(msg)),
			contextBlock(understoodLine(understood),
				fmt.Sprintf("Check the spelling, use fewer criteria, or try %s to list them all. %s shows examples.", code("/zcrm "+strings.ToLower(module)), code("/zcrm help"))),
		},
	}
}

// Refusal renders a command that was refused: why, what was typed, and how
// it was understood when it got that far (understood is empty for a text
// that did not parse).
func Refusal(message, typed, understood string) Answer {
	lines := []string{"You typed: " + code(strings.TrimSpace("/zcrm "+strings.TrimSpace(typed)))}
	text := message
	if understood != "" {
		lines = append(lines, understoodLine(understood))
		text += " Understood as: " + understood
	}
	lines = append(lines, code("/zcrm help")+" shows the syntax and examples.")
	return Answer{
		Text:   text,
		Blocks: []slack.Block{section(":warning: " + slacktext.Escape(message)), contextBlock(lines...)},
	}
}

// NotACRMUser renders the answer for a Slack user with no active CRM user
// of the same email in the org: no data at all.
func NotACRMUser() Answer {
	return Answer{
		Text: NotACRMUserMessage + ".",
		Blocks: []slack.Block{
			section(":lock: " + NotACRMUserMessage + "."),
			contextBlock("Ask your CRM administrator to add you, or use the same email in Slack and in the CRM."),
		},
	}
}

// Example is one line of the usage card: what it does and the command.
type Example struct{ Purpose, Command string }

// Examples are the seed's examples, in the order of its tables.
func Examples() []Example {
	return []Example{
		{"Every record of a module", "/zcrm leads"},
		{"Records containing a word in any field", "/zcrm leads zylker"},
		{"A field with a given value", "/zcrm leads [last name]=[watson]"},
		{"Several fields, all matching", "/zcrm leads [last name]=[watson] [lead source]=[tradeshow]"},
		{"A field with any of several values", "/zcrm leads [lead source]=[webform, tradeshow, cold call]"},
		{"A field starting with a value", "/zcrm contacts [first name] starts with [james]"},
		{"A field ending with a value", "/zcrm contacts [last name] ends with [butler]"},
		{"A field containing a value", "/zcrm accounts [email] contains [onc]"},
		{"A number above a value", "/zcrm leads [annual revenue] > [50000]"},
		{"A number below a value", "/zcrm deals [amount] < [20000]"},
		{"A number at or above a value", "/zcrm deals [discount] >= [15]"},
		{"A number at or below a value", "/zcrm leads [age] <= [40]"},
		{"A checkbox ticked or not", "/zcrm contacts [email opt out] is [true]"},
		{"Everything together", "/zcrm leads [phone] starts with [555,234,912],[company] contains [zyl],[email] starts with [peter, smith],[company] is [zylker]."},
	}
}

// Help renders the usage card.
func Help() Answer {
	var ex strings.Builder
	ex.WriteString("*Examples*")
	for _, e := range Examples() {
		ex.WriteString("\n• " + slacktext.Escape(e.Purpose) + ": " + code(e.Command))
	}
	usage := "*Search your CRM without leaving Slack.*\n" +
		"• " + code("/zcrm <module>") + " lists the module's records.\n" +
		"• " + code("/zcrm <module> <words>") + " finds records containing every word in some field.\n" +
		"• " + code("/zcrm <module> [field label] comparator [value]") + " filters on fields; " +
		code("[value1, value2]") + " matches any of the values. Criteria on one field match if any does; criteria on different fields must all match.\n" +
		"Modules: leads, contacts, accounts and deals (always plural)."
	comparators := "*Comparators* (lower case, as written here)\n" +
		"• Text, e-mail, picklist, lookup fields: " + code("starts with") + " (" + code("begins with") + ", " + code("commence par") + "), " +
		code("ends with") + " (" + code("se termine par") + "), " + code("is") + " (" + code("=") + ", " + code("est") + "), " + code("contains") + " (" + code("contient") + ")\n" +
		"• Number fields: " + code("=") + ", " + code(">") + ", " + code("<") + ", " + code(">=") + ", " + code("<=") + "\n" +
		"• Checkboxes: " + code("is") + " or " + code("=") + " with " + code("true") + " / " + code("false") + " (" + code("vrai") + " / " + code("faux") + ")"
	limits := "At most 5 fields and 10 values per field. Salutation, date and date-time fields cannot be searched. " +
		"The first 10 results are shown, with how many matched in all. Only you see the answer; share a record with its button."
	return Answer{
		Text: "/zcrm searches your CRM: /zcrm <module>, /zcrm <module> <words>, or /zcrm <module> [field label] comparator [value]. Example: /zcrm leads [last name]=[watson]",
		Blocks: []slack.Block{
			slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, "/zcrm: CRM records in Slack", false, false)),
			section(usage),
			section(comparators),
			section(ex.String()),
			contextBlock(slacktext.Escape(limits)),
		},
	}
}
