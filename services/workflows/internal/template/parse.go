// Package template is the language of workflow messages. A template is the
// admin's Slack mrkdwn with tags that name fields of the record the rule
// fired for:
//
//	#{Deals.Deal Name}    a field, by label (case and repeated spaces ignored)
//	#{Deals.Deal_Name}    the same field, by API name
//	#{Owner.Full Name}    the record owner's name; #{Owner.Email} their email
//	#{Record.Link}        an "Open in CRM" link to the record
//	\#{                   a literal "#{"
//
// Parse reads the syntax, Bind checks the tags against a module's fields
// (when an action is saved) and Render fills them from a record (when the
// rule fires), escaping every value so a record's data cannot add markup.
package template

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxSource bounds a template's source; Slack's section text limit (3000)
// applies to the rendered text, and tags are longer than most values.
const MaxSource = 6000

// MaxTag bounds one tag's text between "#{" and "}".
const MaxTag = 200

// ErrSyntax is wrapped by every parse error.
var ErrSyntax = errors.New("template syntax")

// Part is one piece of a parsed template: literal text or a tag.
type Part struct {
	// Literal is admin text, kept as the mrkdwn they wrote.
	Literal string
	// Tag is set for a tag: Module and Name as typed, trimmed.
	Tag *Tag
}

// Tag is one #{Module.Name} as written.
type Tag struct {
	Module, Name string
	// Offset is the byte offset of "#{" in the source.
	Offset int
}

func (t Tag) String() string { return "#{" + t.Module + "." + t.Name + "}" }

// Template is a parsed template.
type Template struct {
	Parts []Part
}

// Parse reads src. Errors wrap [ErrSyntax] and say where.
func Parse(src string) (Template, error) {
	if !utf8.ValidString(src) {
		return Template{}, fmt.Errorf("%w: the template is not valid UTF-8", ErrSyntax)
	}
	if len(src) > MaxSource {
		return Template{}, fmt.Errorf("%w: the template is %d bytes, at most %d", ErrSyntax, len(src), MaxSource)
	}
	var t Template
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.Parts = append(t.Parts, Part{Literal: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(src); {
		switch {
		case strings.HasPrefix(src[i:], `\#{`):
			lit.WriteString("#{")
			i += 3
		case strings.HasPrefix(src[i:], "#{"):
			end := strings.IndexAny(src[i+2:], "}\n")
			if end < 0 || src[i+2+end] == '\n' {
				return Template{}, fmt.Errorf("%w: the tag at %s is not closed with \"}\" (write \\#{ for a literal #{)", ErrSyntax, position(src, i))
			}
			body := src[i+2 : i+2+end]
			tag, err := parseTag(body, i)
			if err != nil {
				return Template{}, fmt.Errorf("%w: the tag at %s: %v", ErrSyntax, position(src, i), err)
			}
			flush()
			t.Parts = append(t.Parts, Part{Tag: &tag})
			i += 2 + end + 1
		default:
			_, size := utf8.DecodeRuneInString(src[i:])
			lit.WriteString(src[i : i+size])
			i += size
		}
	}
	flush()
	return t, nil
}

func parseTag(body string, offset int) (Tag, error) {
	if len(body) > MaxTag {
		return Tag{}, fmt.Errorf("it is %d bytes long, at most %d", len(body), MaxTag)
	}
	mod, name, ok := strings.Cut(body, ".")
	mod, name = strings.TrimSpace(mod), strings.TrimSpace(name)
	switch {
	case strings.TrimSpace(body) == "":
		return Tag{}, errors.New("it is empty; write #{Module.Field Label}, e.g. #{Deals.Deal Name}")
	case !ok || mod == "" || name == "":
		return Tag{}, fmt.Errorf("%q names no field; write #{Module.Field Label}, e.g. #{Deals.Deal Name}", body)
	case strings.Contains(body, "#{"):
		return Tag{}, errors.New("tags cannot be nested")
	}
	return Tag{Module: mod, Name: name, Offset: offset}, nil
}

// position is "line L, column C" (1-based, columns in runes).
func position(src string, offset int) string {
	line := 1 + strings.Count(src[:offset], "\n")
	col := 1 + utf8.RuneCountInString(src[strings.LastIndexByte(src[:offset], '\n')+1:offset])
	return fmt.Sprintf("line %d, column %d", line, col)
}

// String writes the template back as source, so that Parse(t.String())
// gives t again.
func (t Template) String() string {
	var b strings.Builder
	for _, p := range t.Parts {
		if p.Tag != nil {
			b.WriteString(p.Tag.String())
			continue
		}
		b.WriteString(strings.ReplaceAll(p.Literal, "#{", `\#{`))
	}
	return b.String()
}
