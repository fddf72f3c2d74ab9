// Package compose turns a fired action into the Slack message it posts:
// the filled template as a mrkdwn section, and the record's business card
// (libs/card) under it when the action asks for one. Pure: no I/O.
package compose

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/crmslack/crmslack/libs/blockkit"
	"github.com/crmslack/crmslack/libs/card"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"

	"github.com/crmslack/crmslack/services/workflows/internal/template"
	"github.com/crmslack/crmslack/services/workflows/internal/valuefmt"
)

// Input is one action firing for one record.
type Input struct {
	Bound      template.Bound
	Record     *crmv1.Record
	Schema     *crmv1.ModuleSchema
	Format     valuefmt.Format
	Card       card.Config
	AttachCard bool
	// RuleName names the rule in the card's attribution line.
	RuleName string
}

// Message is what a PostMessage carries.
type Message struct {
	// Text is the filled template: the notification and fallback text.
	Text   string
	Blocks []byte
}

// Compose renders the message. The text fits a section (Slack's 3000);
// the blocks pass libs/blockkit's checks.
func Compose(in Input) (Message, error) {
	text := template.Render(in.Bound, template.Input{
		Record: in.Record, Schema: in.Schema, Format: in.Format,
		Link: card.RecordURL(in.Card, in.Record), Max: blockkit.MaxSectionText,
	})
	if strings.TrimSpace(text) == "" {
		text = valuefmt.Missing
	}
	blocks := []slack.Block{slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)}
	if in.AttachCard {
		by := "workflow rule"
		if n := strings.TrimSpace(in.RuleName); n != "" {
			by = "workflow rule “" + n + "”"
		}
		c, err := card.Render(card.Input{Config: in.Card, Record: in.Record, Schema: in.Schema, SharedBy: by, Location: in.Format.Location()})
		if err != nil {
			return Message{}, fmt.Errorf("the record's card: %w", err)
		}
		blocks = append(blocks, slack.NewDividerBlock())
		blocks = append(blocks, c.Blocks...)
	}
	raw, err := json.Marshal(slack.Blocks{BlockSet: blocks})
	if err != nil {
		return Message{}, fmt.Errorf("encoding blocks: %w", err)
	}
	if err := blockkit.Validate(raw); err != nil {
		return Message{}, fmt.Errorf("the message Slack would refuse: %w", err)
	}
	return Message{Text: text, Blocks: raw}, nil
}
