package card

import (
	"fmt"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/crmslack/crmslack/libs/blockkit"
	"github.com/crmslack/crmslack/libs/slacktext"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

const (
	// MaxListCards is how many records a list shows; with three blocks per
	// card and a title that stays well under blockkit.MaxBlocks.
	MaxListCards = 10
	// compactFields is how many key fields a card in a list shows.
	compactFields = 4
)

// ListInput is a page of results of one module, e.g. a /zcrm search.
type ListInput struct {
	Config
	Schema  *crmv1.ModuleSchema
	Records []*crmv1.Record
	// Total is how many records matched; it may exceed len(Records).
	Total    int
	Location *time.Location
	// Buttons returns the buttons of one record (e.g. its ShareButton);
	// nil means none besides "Open in CRM".
	Buttons func(*crmv1.Record) []Button
}

// RenderList renders a title ("3 of 12 leads") and up to MaxListCards
// compact cards, each with its own buttons.
func RenderList(in ListInput) (Card, error) {
	recs := in.Records[:min(len(in.Records), MaxListCards)]
	total := max(in.Total, len(in.Records))
	heading := fmt.Sprintf("%d of %d %s", len(recs), total, noun(in.Schema, total))

	blocks := []slack.Block{slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, slacktext.Plain(heading, blockkit.MaxHeaderText), false, false))}
	text := []string{heading}
	for i, rec := range recs {
		if err := check(rec, in.Schema); err != nil {
			return Card{}, fmt.Errorf("record %d: %w", i, err)
		}
		var buttons []Button
		if in.Buttons != nil {
			buttons = in.Buttons(rec)
		}
		actions, err := actionsBlock(in.Config, rec, buttons)
		if err != nil {
			return Card{}, fmt.Errorf("record %d: %w", i, err)
		}
		t := title(rec, in.Schema, in.Location)
		fields := keyFields(in.Config, rec, in.Schema, in.Location, compactFields)
		objs := make([]*slack.TextBlockObject, len(fields))
		for j, f := range fields {
			objs[j] = fieldText(f)
		}
		if i > 0 {
			blocks = append(blocks, slack.NewDividerBlock())
		}
		blocks = append(blocks, slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, "*"+slacktext.Clip(t, blockkit.MaxSectionText-2)+"*", false, false), objs, nil))
		if actions != nil {
			blocks = append(blocks, actions)
		}
		text = append(text, t)
	}
	return Card{Blocks: blocks, Text: slacktext.Clip(strings.Join(text, "\n"), blockkit.MaxSectionText)}, nil
}

// noun is the module's name for n records, lower-cased for a running
// sentence: "lead", "leads".
func noun(schema *crmv1.ModuleSchema, n int) string {
	label := schema.GetPluralLabel()
	if n == 1 {
		label = schema.GetSingularLabel()
	}
	if label == "" {
		label = schema.GetModule()
	}
	if label == "" {
		label = "records"
	}
	return strings.ToLower(label)
}
