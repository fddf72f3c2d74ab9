// Package card renders a CRM record as a Slack business card (Block Kit),
// the one rendering shared by /zcrm results, record sharing and workflow
// notifications. It is pure: no I/O, the same input gives the same blocks.
package card

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/crmslack/crmslack/libs/blockkit"
	"github.com/crmslack/crmslack/libs/slacktext"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

// DefaultMaxFields is how many fields a module without configured key fields
// shows: its first non-empty fields in schema order.
const DefaultMaxFields = 6

// OwnerField is the API name of a record's owner; when the record's fields
// do not carry it, the card falls back to Record.Owner.
const OwnerField = "Owner"

var (
	ErrNoRecord       = errors.New("card: no record")
	ErrSchemaMismatch = errors.New("card: schema is for another module")
	ErrBadButton      = errors.New("card: invalid button")
)

// DefaultKeyFields are the key fields of the CRM's standard modules, by API
// name, in display order.
func DefaultKeyFields() map[string][]string {
	return map[string][]string{
		"Leads":    {"Company", "Email", "Phone", "Lead_Status", "Lead_Source", OwnerField},
		"Contacts": {"Account_Name", "Email", "Phone", "Title", OwnerField},
		"Accounts": {"Industry", "Phone", "Website", "Annual_Revenue", OwnerField},
		"Deals":    {"Amount", "Stage", "Closing_Date", "Account_Name", OwnerField},
	}
}

// URLFunc builds the "Open in CRM" link of a record from the CRM base URL.
type URLFunc func(baseURL, module, id string) string

// DefaultURL is base/module/id with each part path-escaped.
func DefaultURL(baseURL, module, id string) string {
	return strings.TrimRight(baseURL, "/") + "/" + url.PathEscape(module) + "/" + url.PathEscape(id)
}

// Config is what a service sets once; it is embedded in every input.
type Config struct {
	// BaseURL of the CRM's UI, for records that carry no URL of their own.
	// Empty: no "Open in CRM" link for such records.
	BaseURL string
	// RecordURL builds the link from BaseURL; nil means DefaultURL.
	RecordURL URLFunc
	// KeyFields by module API name; nil means DefaultKeyFields(). A module
	// missing from the map shows its first MaxFields non-empty fields.
	KeyFields map[string][]string
	// MaxFields for modules without key fields; 0 means DefaultMaxFields.
	MaxFields int
}

// Button is an interactive button under the card.
type Button struct {
	Text     string
	ActionID string
	Value    string
	// Style is "", "primary" or "danger".
	Style slack.Style
}

// Input is one record to render.
type Input struct {
	Config
	Record *crmv1.Record
	// Schema gives labels, types and the display field; nil renders API
	// names and formats values by their kind.
	Schema *crmv1.ModuleSchema
	// Message is shown above the card: a sharer's note or a workflow's
	// filled template. It is plain text and escaped.
	Message string
	// SharedBy names who shared the card, for the attribution line.
	SharedBy string
	// SharedBySlackUser is the Slack user id (U… or W…) of who shared the
	// card; when set, the attribution mentions them (<@U…>), which Slack
	// shows as their name in the reader's workspace, instead of SharedBy.
	// A value that is not a Slack user id is ignored.
	SharedBySlackUser string
	// Location is the viewer's time zone for datetimes; nil means UTC.
	Location *time.Location
	Buttons  []Button
}

// Card is a rendered message: blocks plus the fallback text Slack shows in
// notifications and to clients without Block Kit. Text is always set.
type Card struct {
	Blocks []slack.Block
	Text   string
}

// field is one label/value pair, formatted but not escaped.
type field struct{ label, value string }

// Render renders one record as a full card.
func Render(in Input) (Card, error) {
	if err := check(in.Record, in.Schema); err != nil {
		return Card{}, err
	}
	actions, err := actionsBlock(in.Config, in.Record, in.Buttons)
	if err != nil {
		return Card{}, err
	}
	title := title(in.Record, in.Schema, in.Location)
	fields := keyFields(in.Config, in.Record, in.Schema, in.Location, blockkit.MaxSectionFields)

	var blocks []slack.Block
	if msg := strings.TrimSpace(in.Message); msg != "" {
		blocks = append(blocks, slack.NewSectionBlock(markdown(msg, blockkit.MaxSectionText), nil, nil))
	}
	blocks = append(blocks, slack.NewHeaderBlock(slack.NewTextBlockObject(slack.PlainTextType, slacktext.Plain(title, blockkit.MaxHeaderText), false, false)))
	if len(fields) > 0 {
		objs := make([]*slack.TextBlockObject, len(fields))
		for i, f := range fields {
			objs[i] = fieldText(f)
		}
		blocks = append(blocks, slack.NewSectionBlock(nil, objs, nil))
	}
	mention := Mention(in.SharedBySlackUser)
	blocks = append(blocks, slack.NewContextBlock("", slack.NewTextBlockObject(slack.MarkdownType, attribution(in.Schema, in.Record, in.SharedBy, mention), false, false)))
	if actions != nil {
		blocks = append(blocks, actions)
	}
	return Card{Blocks: blocks, Text: fallback(in.Message, title, in.SharedBy, mention, fields)}, nil
}

var slackUserID = regexp.MustCompile(`^[UW][A-Z0-9]{2,31}$`)

// Mention is Slack's mention of a user id, "<@U…>", or "" when id is not
// a Slack user id (so nothing from outside can inject markup through it).
func Mention(id string) string {
	if !slackUserID.MatchString(id) {
		return ""
	}
	return "<@" + id + ">"
}

func check(rec *crmv1.Record, schema *crmv1.ModuleSchema) error {
	if rec == nil {
		return ErrNoRecord
	}
	if schema != nil && schema.GetModule() != rec.GetModule() {
		return fmt.Errorf("%w: record %q, schema %q", ErrSchemaMismatch, rec.GetModule(), schema.GetModule())
	}
	return nil
}

func markdown(s string, max int) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, slacktext.Clip(s, max), false, false)
}

// fieldText is "*Label*\nvalue" within a section field's limit; the label is
// capped first so a long value cannot push it out.
func fieldText(f field) *slack.TextBlockObject {
	label := "*" + slacktext.Clip(f.label, 100) + "*\n"
	return slack.NewTextBlockObject(slack.MarkdownType, label+slacktext.Clip(f.value, blockkit.MaxSectionFieldText-utf8.RuneCountInString(label)), false, false)
}

// attribution is the context line as mrkdwn: the module, and who shared
// the card, by mention when there is one.
func attribution(schema *crmv1.ModuleSchema, rec *crmv1.Record, sharedBy, mention string) string {
	s := singular(schema, rec)
	if mention != "" {
		return slacktext.Clip(s+" · Shared by ", blockkit.MaxSectionText-len(mention)) + mention
	}
	if sharedBy = strings.TrimSpace(sharedBy); sharedBy != "" {
		s += " · Shared by " + sharedBy
	}
	return slacktext.Clip(s, blockkit.MaxSectionText)
}

func singular(schema *crmv1.ModuleSchema, rec *crmv1.Record) string {
	if l := strings.TrimSpace(schema.GetSingularLabel()); l != "" {
		return l
	}
	if m := strings.TrimSpace(rec.GetModule()); m != "" {
		return m
	}
	return "Record"
}

// title names the record: its display field, else "<Singular> <id>".
func title(rec *crmv1.Record, schema *crmv1.ModuleSchema, loc *time.Location) string {
	if df := schema.GetDisplayField(); df != "" {
		if v := Value(rec.GetFields()[df], meta(schema, df), loc); v != "" {
			return v
		}
	}
	return strings.TrimSpace(singular(schema, rec) + " " + rec.GetId())
}

func meta(schema *crmv1.ModuleSchema, apiName string) *crmv1.FieldMeta {
	for _, f := range schema.GetFields() {
		if f.GetApiName() == apiName {
			return f
		}
	}
	return nil
}

func label(m *crmv1.FieldMeta, apiName string) string {
	if l := strings.TrimSpace(m.GetLabel()); l != "" {
		return l
	}
	return strings.ReplaceAll(apiName, "_", " ")
}

// keyFields picks the non-empty fields the card shows, at most limit.
func keyFields(cfg Config, rec *crmv1.Record, schema *crmv1.ModuleSchema, loc *time.Location, limit int) []field {
	kf := cfg.KeyFields
	if kf == nil {
		kf = DefaultKeyFields()
	}
	names, ok := kf[rec.GetModule()]
	if !ok {
		names = firstFields(rec, schema)
		max := cfg.MaxFields
		if max <= 0 {
			max = DefaultMaxFields
		}
		limit = min(limit, max)
	}
	var out []field
	for _, name := range names {
		if len(out) == limit {
			break
		}
		m := meta(schema, name)
		v := Value(rec.GetFields()[name], m, loc)
		if v == "" && name == OwnerField {
			v = strings.TrimSpace(rec.GetOwner().GetName())
		}
		if v != "" {
			out = append(out, field{label: label(m, name), value: v})
		}
	}
	return out
}

// firstFields lists a module's fields in schema order, then any the schema
// does not know in name order (so the output is stable), without the
// display field, which is already the title.
func firstFields(rec *crmv1.Record, schema *crmv1.ModuleSchema) []string {
	var names []string
	seen := map[string]bool{schema.GetDisplayField(): true}
	for _, f := range schema.GetFields() {
		if !seen[f.GetApiName()] {
			seen[f.GetApiName()] = true
			names = append(names, f.GetApiName())
		}
	}
	var extra []string
	for name := range rec.GetFields() {
		if !seen[name] {
			extra = append(extra, name)
		}
	}
	slices.Sort(extra)
	return append(names, extra...)
}

// recordURL is the record's own URL, else one built from the base URL. A
// link Slack would reject (not http(s), too long) is left out rather than
// failing the whole message.
func recordURL(cfg Config, rec *crmv1.Record) string {
	u := rec.GetUrl()
	if u == "" && cfg.BaseURL != "" {
		build := cfg.RecordURL
		if build == nil {
			build = DefaultURL
		}
		u = build(cfg.BaseURL, rec.GetModule(), rec.GetId())
	}
	if u == "" || len(u) > blockkit.MaxURL {
		return ""
	}
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return ""
	}
	return u
}

// actionsBlock holds the "Open in CRM" link and the caller's buttons; nil
// when there are none. Button ids and values are references, so a bad one
// is an error, not something to truncate.
func actionsBlock(cfg Config, rec *crmv1.Record, buttons []Button) (*slack.ActionBlock, error) {
	var elems []slack.BlockElement
	ids := map[string]bool{}
	if u := recordURL(cfg, rec); u != "" {
		ids[OpenActionID] = true
		elems = append(elems, slack.NewButtonBlockElement(OpenActionID, "", slack.NewTextBlockObject(slack.PlainTextType, "Open in CRM", false, false)).WithURL(u))
	}
	for _, b := range buttons {
		switch {
		case b.ActionID == "" || len(b.ActionID) > blockkit.MaxActionID:
			return nil, fmt.Errorf("%w: action_id must be 1..%d characters", ErrBadButton, blockkit.MaxActionID)
		case ids[b.ActionID]:
			return nil, fmt.Errorf("%w: duplicate action_id %q", ErrBadButton, b.ActionID)
		case utf8.RuneCountInString(b.Value) > blockkit.MaxButtonValue:
			return nil, fmt.Errorf("%w: value of %q is over %d characters", ErrBadButton, b.ActionID, blockkit.MaxButtonValue)
		case strings.TrimSpace(b.Text) == "":
			return nil, fmt.Errorf("%w: %q has no text", ErrBadButton, b.ActionID)
		case b.Style != slack.StyleDefault && b.Style != slack.StylePrimary && b.Style != slack.StyleDanger:
			return nil, fmt.Errorf("%w: style %q", ErrBadButton, b.Style)
		case len(elems) == blockkit.MaxActionsElements:
			return nil, fmt.Errorf("%w: more than %d buttons", ErrBadButton, blockkit.MaxActionsElements)
		}
		ids[b.ActionID] = true
		elems = append(elems, slack.NewButtonBlockElement(b.ActionID, b.Value, slack.NewTextBlockObject(slack.PlainTextType, slacktext.Plain(b.Text, blockkit.MaxButtonText), false, false)).WithStyle(b.Style))
	}
	if len(elems) == 0 {
		return nil, nil
	}
	return slack.NewActionBlock("", elems...), nil
}

// fallback is the plain-text version of the card, escaped because Slack
// reads a message's text as mrkdwn too.
func fallback(message, title, sharedBy, mention string, fields []field) string {
	var b strings.Builder
	if m := strings.TrimSpace(message); m != "" {
		b.WriteString(m + "\n")
	}
	b.WriteString(title)
	for _, f := range fields {
		b.WriteString("\n" + f.label + ": " + f.value)
	}
	if mention != "" {
		const by = "\nShared by "
		return slacktext.Clip(b.String(), blockkit.MaxSectionText-len(by)-len(mention)) + by + mention
	}
	if s := strings.TrimSpace(sharedBy); s != "" {
		b.WriteString("\nShared by " + s)
	}
	return slacktext.Clip(b.String(), blockkit.MaxSectionText)
}
