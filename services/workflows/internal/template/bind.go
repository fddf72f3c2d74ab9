package template

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/crmslack/crmslack/libs/fieldmatch"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

// The pseudo-modules of tags that are not fields of the record's module.
const (
	ModuleOwner  = "Owner"
	ModuleRecord = "Record"
)

var (
	// ErrUnknownField is wrapped by a tag naming no field of its module.
	ErrUnknownField = errors.New("unknown field")
	// ErrWrongModule is wrapped by a tag of another module than the rule's.
	ErrWrongModule = errors.New("wrong module")
	// ErrTooLong is wrapped when even empty values would not fit Slack.
	ErrTooLong = errors.New("template too long")
)

// BindError is a tag that does not name a field; Suggestions are the
// closest tags that do, best first.
type BindError struct {
	Tag         Tag
	Reason      error
	Msg         string
	Suggestions []string
}

func (e *BindError) Error() string {
	msg := e.Tag.String() + ": " + e.Msg
	if len(e.Suggestions) > 0 {
		msg += "; did you mean " + strings.Join(e.Suggestions, " or ") + "?"
	}
	return msg
}

func (e *BindError) Unwrap() error { return e.Reason }

// Kind is what a bound part stands for.
type Kind int

const (
	Literal Kind = iota
	Field
	OwnerName
	OwnerEmail
	RecordLink
)

// BoundPart is a part with its tag resolved.
type BoundPart struct {
	Kind Kind
	// Text is the literal, for Literal.
	Text string
	// APIName and Meta, for Field: the field's metadata when bound, used
	// when the firing event's schema no longer has the field.
	APIName string
	Meta    *crmv1.FieldMeta
}

// Bound is a template whose every tag names something a record has.
type Bound struct {
	Module string
	Parts  []BoundPart
}

// Bind resolves every tag of t against the module's schema. The first tag
// that names nothing is a *BindError.
func Bind(t Template, schema *crmv1.ModuleSchema) (Bound, error) {
	b := Bound{Module: schema.GetModule(), Parts: make([]BoundPart, 0, len(t.Parts))}
	for _, p := range t.Parts {
		if p.Tag == nil {
			b.Parts = append(b.Parts, BoundPart{Kind: Literal, Text: p.Literal})
			continue
		}
		bp, err := bindTag(*p.Tag, schema)
		if err != nil {
			return Bound{}, err
		}
		b.Parts = append(b.Parts, bp)
	}
	return b, nil
}

func bindTag(tag Tag, schema *crmv1.ModuleSchema) (BoundPart, error) {
	name := fieldmatch.Normalize(strings.ReplaceAll(tag.Name, "_", " "))
	switch {
	case fieldmatch.SameLabel(tag.Module, ModuleOwner):
		switch name {
		case "full name", "name":
			return BoundPart{Kind: OwnerName}, nil
		case "email":
			return BoundPart{Kind: OwnerEmail}, nil
		}
		return BoundPart{}, &BindError{Tag: tag, Reason: ErrUnknownField, Msg: "the owner has a Full Name and an Email",
			Suggestions: fieldmatch.Closest(tag.Name, []string{"#{Owner.Full Name}", "#{Owner.Email}"}, 1)}
	case fieldmatch.SameLabel(tag.Module, ModuleRecord):
		if name == "link" || name == "url" {
			return BoundPart{Kind: RecordLink}, nil
		}
		return BoundPart{}, &BindError{Tag: tag, Reason: ErrUnknownField, Msg: "a record has a Link", Suggestions: []string{"#{Record.Link}"}}
	case !isModule(tag.Module, schema):
		return BoundPart{}, &BindError{Tag: tag, Reason: ErrWrongModule,
			Msg:         fmt.Sprintf("the rule is on %s, so its tags name %s fields (or Owner and Record)", schema.GetModule(), schema.GetModule()),
			Suggestions: []string{"#{" + schema.GetModule() + "." + tag.Name + "}"}}
	}
	for _, f := range schema.GetFields() {
		if fieldmatch.SameLabel(f.GetLabel(), tag.Name) || strings.EqualFold(f.GetApiName(), tag.Name) {
			return BoundPart{Kind: Field, APIName: f.GetApiName(), Meta: f}, nil
		}
	}
	labels := make([]string, 0, len(schema.GetFields()))
	for _, f := range schema.GetFields() {
		labels = append(labels, f.GetLabel())
	}
	sugg := fieldmatch.Closest(tag.Name, labels, 3)
	for i, s := range sugg {
		sugg[i] = "#{" + schema.GetModule() + "." + s + "}"
	}
	return BoundPart{}, &BindError{Tag: tag, Reason: ErrUnknownField,
		Msg: fmt.Sprintf("%s has no field labelled or named %q", schema.GetModule(), tag.Name), Suggestions: sugg}
}

func isModule(name string, schema *crmv1.ModuleSchema) bool {
	for _, m := range []string{schema.GetModule(), schema.GetPluralLabel(), schema.GetSingularLabel()} {
		if m != "" && fieldmatch.SameLabel(m, name) {
			return true
		}
	}
	return false
}

// CheckFits refuses a template that cannot fit max runes (Slack's section
// text limit) even with every value empty.
func (b Bound) CheckFits(max int) error {
	n := 0
	for _, p := range b.Parts {
		if p.Kind == Literal {
			n += utf8.RuneCountInString(p.Text)
		} else {
			n += utf8.RuneCountInString(missing)
		}
	}
	if n > max {
		return fmt.Errorf("%w: its text alone is %d characters; a Slack message section holds %d", ErrTooLong, n, max)
	}
	return nil
}

// Canonical writes b back as a template whose field tags use API names, so
// it binds again whatever labels the CRM shows later ([Rebind]).
func (b Bound) Canonical() string {
	var t Template
	for _, p := range b.Parts {
		switch p.Kind {
		case Literal:
			t.Parts = append(t.Parts, Part{Literal: p.Text})
		case Field:
			t.Parts = append(t.Parts, Part{Tag: &Tag{Module: b.Module, Name: p.APIName}})
		case OwnerName:
			t.Parts = append(t.Parts, Part{Tag: &Tag{Module: ModuleOwner, Name: "Full Name"}})
		case OwnerEmail:
			t.Parts = append(t.Parts, Part{Tag: &Tag{Module: ModuleOwner, Name: "Email"}})
		case RecordLink:
			t.Parts = append(t.Parts, Part{Tag: &Tag{Module: ModuleRecord, Name: "Link"}})
		}
	}
	return t.String()
}

// Rebind binds a canonical template (see [Bound.Canonical]) without a
// schema: field tags are taken as API names, whose types the firing
// event's schema gives. It fails only on a template that does not parse.
func Rebind(canonical, module string) (Bound, error) {
	t, err := Parse(canonical)
	if err != nil {
		return Bound{}, err
	}
	b := Bound{Module: module, Parts: make([]BoundPart, 0, len(t.Parts))}
	for _, p := range t.Parts {
		switch {
		case p.Tag == nil:
			b.Parts = append(b.Parts, BoundPart{Kind: Literal, Text: p.Literal})
		case fieldmatch.SameLabel(p.Tag.Module, ModuleOwner) || fieldmatch.SameLabel(p.Tag.Module, ModuleRecord):
			bp, err := bindTag(*p.Tag, &crmv1.ModuleSchema{Module: module})
			if err != nil {
				return Bound{}, err
			}
			b.Parts = append(b.Parts, bp)
		default:
			b.Parts = append(b.Parts, BoundPart{Kind: Field, APIName: p.Tag.Name})
		}
	}
	return b, nil
}
