package template

import (
	"strings"
	"unicode"
	"unicode/utf8"

	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"

	"github.com/crmslack/crmslack/services/workflows/internal/valuefmt"
)

const (
	missing  = valuefmt.Missing
	ellipsis = "…"
	// LinkText is what #{Record.Link} shows.
	LinkText = "Open in CRM"
)

// Input is what a firing fills a template with.
type Input struct {
	Record *crmv1.Record
	// Schema is the firing event's, for field types; a field it lacks is
	// written by its metadata from when the template was bound.
	Schema *crmv1.ModuleSchema
	Format valuefmt.Format
	// Link is the record's checked http(s) URL, or "" for none.
	Link string
	// Max is the most runes the result may have (Slack's section limit).
	Max int
}

// Render fills b from in.Record: Slack mrkdwn where the template's text is
// kept as written and every value is escaped (see Escape). A result longer
// than in.Max is cut, never inside an entity or a <…> link, and ends in "…".
func Render(b Bound, in Input) string {
	var segs segments
	for _, p := range b.Parts {
		switch p.Kind {
		case Literal:
			segs.literal(p.Text)
		case Field:
			meta := p.Meta
			if m := fieldMeta(in.Schema, p.APIName); m != nil {
				meta = m
			}
			segs.value(in.Format.Value(in.Record.GetFields()[p.APIName], meta))
		case OwnerName:
			segs.value(ownerName(in.Record))
		case OwnerEmail:
			segs.value(orMissing(in.Record.GetOwner().GetEmail()))
		case RecordLink:
			if l, ok := linkTag(in.Link); ok {
				segs.atomic(l)
			} else {
				segs.value(missing)
			}
		}
	}
	return segs.join(in.Max)
}

// linkTag is Slack's <url|text> for a record link. The URL is CRM data: one
// with a character that would end the tag early ("<", ">", "|", white
// space) is no link at all, and "&" is written as Slack wants it, "&amp;".
func linkTag(u string) (string, bool) {
	if u == "" || strings.ContainsAny(u, "<>| \t\r\n") || !utf8.ValidString(u) {
		return "", false
	}
	return "<" + strings.ReplaceAll(u, "&", "&amp;") + "|" + LinkText + ">", true
}

func fieldMeta(schema *crmv1.ModuleSchema, apiName string) *crmv1.FieldMeta {
	for _, f := range schema.GetFields() {
		if f.GetApiName() == apiName {
			return f
		}
	}
	return nil
}

func ownerName(rec *crmv1.Record) string {
	if n := strings.TrimSpace(rec.GetOwner().GetName()); n != "" {
		return n
	}
	if l := rec.GetFields()["Owner"].GetLookup(); l != nil {
		return orMissing(l.GetName())
	}
	return missing
}

func orMissing(s string) string {
	if s = strings.TrimSpace(s); s == "" {
		return missing
	}
	return s
}

// Escape makes a value inert in Slack mrkdwn: "&", "<" and ">" become
// entities, so no value can add a mention (<!channel>, <@U…>) or a link;
// and the formatting marks "*", "_", "~" and "`" become look-alike
// characters (∗ ＿ ∼ ˋ) wherever they could open or close bold, italics,
// strike-through or code, that is unless both neighbours are letters or
// digits ("first_last@example.com" stays as it is).
func Escape(v string) string {
	var b strings.Builder
	escapeInto(&b, v)
	return b.String()
}

func escapeInto(b *strings.Builder, v string) {
	var prev rune
	for i, r := range v {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '*', '_', '~', '`':
			next, _ := utf8.DecodeRuneInString(v[i+utf8.RuneLen(r):])
			if wordRune(prev) && wordRune(next) {
				b.WriteRune(r)
			} else {
				b.WriteRune(lookAlike[r])
			}
		case utf8.RuneError:
			b.WriteRune(unicode.ReplacementChar)
		default:
			b.WriteRune(r)
		}
		prev = r
	}
}

var lookAlike = map[rune]rune{'*': '∗', '_': '＿', '~': '∼', '`': 'ˋ'}

func wordRune(r rune) bool { return r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsDigit(r)) }
