// Package filter binds a parsed slash command to a module's field metadata,
// giving a [Query] a read model can evaluate: each label resolved to a field,
// each comparator checked against the field's type, each value parsed for
// that type. It also owns the matching rules (how text is folded, how a
// value compares), so every read model matches the same way.
//
// Decisions where the seed is silent or ambiguous:
//   - Text compares without regard to case (the seed's "[last name]=[watson]"
//     finds Watson): both sides are folded with [Fold].
//   - Phone fields compare on their digits only, so "[phone] starts with
//     [555]" finds "555-0101" and "(555) 0101"; a phone value without a digit
//     is refused.
//   - The seed lists single line, multi-line, e-mail, picklist, multi-select
//     picklist, lookup and number fields as searchable, and its own example
//     searches [phone]: those are searchable, and so is the record owner
//     (a lookup to a user) and checkbox fields (the seed's boolean table).
//     URL, salutation, date and date-time fields are refused.
//   - Numbers: a comma always separates values, so "50,000" is two values;
//     spaces may group digits ("50 000"); "." is the decimal point.
//   - Number fields take only =, >, <, >=, <= ("is" is not in the seed's
//     list for numbers); booleans take "is" or "=" with true, false, vrai
//     or faux (any case).
//   - The 10-value limit counts every value typed for one field, across all
//     the criteria on it.
package filter

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/crmslack/crmslack/libs/fieldmatch"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	"github.com/crmslack/crmslack/services/query/internal/slash"
)

// Limits the seed sets.
const (
	MaxFields         = 5
	MaxValuesPerField = 10
)

// Sentinel reasons a command is refused; errors.Is works on a *RefusalError.
var (
	ErrTooManyFields  = errors.New("too many fields")
	ErrTooManyValues  = errors.New("too many values")
	ErrUnknownField   = errors.New("unknown field")
	ErrNotSearchable  = errors.New("field not searchable")
	ErrComparator     = errors.New("comparator does not fit the field type")
	ErrBadValue       = errors.New("value does not fit the field type")
	ErrModuleMismatch = errors.New("schema of another module")
	// ErrNotAQuery: help is answered without binding.
	ErrNotAQuery = errors.New("command is not a query")
)

// RefusalError is a command refused for this module; Error is the message
// meant for the Slack user.
type RefusalError struct {
	Reason  error
	Message string
}

func (e *RefusalError) Error() string { return e.Message }

// Unwrap makes errors.Is(err, ErrTooManyFields) and the like work.
func (e *RefusalError) Unwrap() error { return e.Reason }

func refuse(reason error, format string, args ...any) error {
	return &RefusalError{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Class is how a field type is searched.
type Class int

// Classes of field types.
const (
	NotSearchable Class = iota
	TextLike
	Numeric
	Boolean
)

// ClassOf tells how a field of this type is searched.
func ClassOf(t crmv1.FieldType) Class {
	switch t {
	case crmv1.FieldType_FIELD_TYPE_SINGLE_LINE, crmv1.FieldType_FIELD_TYPE_MULTI_LINE,
		crmv1.FieldType_FIELD_TYPE_EMAIL, crmv1.FieldType_FIELD_TYPE_PHONE,
		crmv1.FieldType_FIELD_TYPE_PICKLIST, crmv1.FieldType_FIELD_TYPE_MULTI_PICKLIST,
		crmv1.FieldType_FIELD_TYPE_LOOKUP, crmv1.FieldType_FIELD_TYPE_OWNER:
		return TextLike
	case crmv1.FieldType_FIELD_TYPE_INTEGER, crmv1.FieldType_FIELD_TYPE_DECIMAL,
		crmv1.FieldType_FIELD_TYPE_CURRENCY, crmv1.FieldType_FIELD_TYPE_PERCENT:
		return Numeric
	case crmv1.FieldType_FIELD_TYPE_BOOLEAN:
		return Boolean
	}
	return NotSearchable
}

// Fold is the text every comparison sees: lower case, and digits only for
// phone fields. Read models store folded text; queries carry folded values.
func Fold(t crmv1.FieldType, s string) string {
	if t == crmv1.FieldType_FIELD_TYPE_PHONE {
		return strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, s)
	}
	return strings.ToLower(s)
}

// Kind tells what a query asks for.
type Kind int

// Query kinds.
const (
	KindList Kind = iota + 1
	KindGlobalSearch
	KindCriteria
)

// Query is a command bound to a module's schema.
type Query struct {
	Kind   Kind
	Module string
	// Words of a global search, lower case; each must appear in some
	// text-like field.
	Words []string
	// Fields are AND'ed; each appears once, in the order first typed.
	Fields []Field
	// described is the wording of the command as understood.
	described string
}

// Field is the OR'ed tests on one field.
type Field struct {
	APIName string
	Label   string
	Type    crmv1.FieldType
	Class   Class
	Tests   []Test
}

// Test is one comparator with one value.
type Test struct {
	Comparator slash.Comparator
	// Text is the folded value, for text-like fields.
	Text string
	// Number is the value of numeric fields, and 1 or 0 for booleans.
	Number float64
}

// MatchText compares a folded field value.
func (t Test) MatchText(folded string) bool {
	switch t.Comparator {
	case slash.StartsWith:
		return strings.HasPrefix(folded, t.Text)
	case slash.EndsWith:
		return strings.HasSuffix(folded, t.Text)
	case slash.Contains:
		return strings.Contains(folded, t.Text)
	case slash.Is, slash.Equals:
		return folded == t.Text
	}
	return false
}

// MatchNumber compares a number (1 or 0 for booleans); NaN, an absent
// value, matches nothing.
func (t Test) MatchNumber(n float64) bool {
	switch t.Comparator {
	case slash.Is, slash.Equals:
		return n == t.Number
	case slash.Greater:
		return n > t.Number
	case slash.Less:
		return n < t.Number
	case slash.GreaterOrEqual:
		return n >= t.Number
	case slash.LessOrEqual:
		return n <= t.Number
	}
	return false
}

// Describe says in words how the query was understood, with the schema's
// labels: "Leads where (Phone starts with 555 or 234 or 912) and ...".
func (q *Query) Describe() string { return q.described }

// Bind resolves a list, global search or criteria command against the
// module's schema. A refusal is a *RefusalError.
func Bind(cmd slash.Command, schema *crmv1.ModuleSchema) (*Query, error) {
	if cmd.Kind != slash.KindList && cmd.Kind != slash.KindGlobalSearch && cmd.Kind != slash.KindCriteria {
		return nil, fmt.Errorf("binding a command of kind %d: %w", cmd.Kind, ErrNotAQuery)
	}
	if cmd.Module != schema.GetModule() {
		return nil, fmt.Errorf("binding a %s command: %w (%s)", cmd.Module, ErrModuleMismatch, schema.GetModule())
	}
	q := &Query{Module: cmd.Module}
	switch cmd.Kind {
	case slash.KindList:
		q.Kind = KindList
	case slash.KindGlobalSearch:
		q.Kind = KindGlobalSearch
		for _, w := range cmd.Words {
			q.Words = append(q.Words, strings.ToLower(w))
		}
	case slash.KindCriteria:
		q.Kind = KindCriteria
		if err := q.bindCriteria(cmd.Criteria, schema); err != nil {
			return nil, err
		}
	}
	q.described = describe(cmd, q)
	return q, nil
}

func (q *Query) bindCriteria(criteria []slash.Criterion, schema *crmv1.ModuleSchema) error {
	byAPI := map[string]int{}
	values := map[string]int{}
	for _, cr := range criteria {
		meta, err := lookup(cr.FieldLabel, schema)
		if err != nil {
			return err
		}
		i, seen := byAPI[meta.GetApiName()]
		if !seen {
			if len(q.Fields) == MaxFields {
				return refuse(ErrTooManyFields, "a search can use at most %d fields; this one uses more (the sixth is [%s])", MaxFields, meta.GetLabel())
			}
			i = len(q.Fields)
			byAPI[meta.GetApiName()] = i
			q.Fields = append(q.Fields, Field{APIName: meta.GetApiName(), Label: meta.GetLabel(), Type: meta.GetType(), Class: ClassOf(meta.GetType())})
		}
		values[meta.GetApiName()] += len(cr.Values)
		if n := values[meta.GetApiName()]; n > MaxValuesPerField {
			return refuse(ErrTooManyValues, "[%s] has %d values; a field takes at most %d", meta.GetLabel(), n, MaxValuesPerField)
		}
		f := &q.Fields[i]
		if err := checkComparator(f, cr.Comparator); err != nil {
			return err
		}
		for _, v := range cr.Values {
			t, err := parseValue(f, cr.Comparator, v)
			if err != nil {
				return err
			}
			f.Tests = append(f.Tests, t)
		}
	}
	return nil
}

func lookup(label string, schema *crmv1.ModuleSchema) (*crmv1.FieldMeta, error) {
	for _, f := range schema.GetFields() {
		if fieldmatch.SameLabel(f.GetLabel(), label) {
			if ClassOf(f.GetType()) == NotSearchable {
				return nil, refuse(ErrNotSearchable, "[%s] is a %s field, which slash commands cannot search (salutation, date, date-time and URL fields are left out)",
					f.GetLabel(), typeName(f.GetType()))
			}
			return f, nil
		}
	}
	msg := fmt.Sprintf("%s has no field labelled [%s]", schema.GetModule(), label)
	if s := suggest(label, schema); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return nil, refuse(ErrUnknownField, "%s", msg)
}

// suggest names the three searchable labels closest to label by edit
// distance, closest first.
func suggest(label string, schema *crmv1.ModuleSchema) []string {
	var labels []string
	for _, f := range schema.GetFields() {
		if ClassOf(f.GetType()) != NotSearchable {
			labels = append(labels, f.GetLabel())
		}
	}
	out := fieldmatch.Closest(label, labels, 3)
	for i, l := range out {
		out[i] = "[" + l + "]"
	}
	return out
}

func checkComparator(f *Field, c slash.Comparator) error {
	switch f.Class {
	case TextLike:
		switch c {
		case slash.StartsWith, slash.EndsWith, slash.Is, slash.Equals, slash.Contains:
			return nil
		}
		return refuse(ErrComparator, "%q does not apply to [%s], a text field: use starts with, ends with, is, = or contains", c.String(), f.Label)
	case Numeric:
		switch c {
		case slash.Equals, slash.Greater, slash.Less, slash.GreaterOrEqual, slash.LessOrEqual:
			return nil
		}
		return refuse(ErrComparator, "%q does not apply to [%s], a number field: use =, >, <, >= or <=", c.String(), f.Label)
	default: // Boolean: lookup let no other class through
		if c == slash.Is || c == slash.Equals {
			return nil
		}
		return refuse(ErrComparator, "%q does not apply to [%s], a checkbox: use is or = with true or false", c.String(), f.Label)
	}
}

func parseValue(f *Field, c slash.Comparator, v string) (Test, error) {
	t := Test{Comparator: c}
	switch f.Class {
	case Numeric:
		n, err := strconv.ParseFloat(strings.Map(dropSpace, v), 64)
		if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
			return Test{}, refuse(ErrBadValue, "[%s] is a number field and %q is not a number (write 50000 or 50 000; a comma separates values)", f.Label, v)
		}
		t.Number = n
	case Boolean:
		switch strings.ToLower(v) {
		case "true", "vrai":
			t.Number = 1
		case "false", "faux":
			t.Number = 0
		default:
			return Test{}, refuse(ErrBadValue, "[%s] is a checkbox: its value is true or false (vrai or faux), not %q", f.Label, v)
		}
	default:
		t.Text = Fold(f.Type, v)
		if t.Text == "" {
			return Test{}, refuse(ErrBadValue, "[%s] is a phone field and %q has no digit", f.Label, v)
		}
	}
	return t, nil
}

func dropSpace(r rune) rune {
	if unicode.IsSpace(r) {
		return -1
	}
	return r
}

func typeName(t crmv1.FieldType) string {
	switch t {
	case crmv1.FieldType_FIELD_TYPE_SALUTATION:
		return "salutation"
	case crmv1.FieldType_FIELD_TYPE_DATE:
		return "date"
	case crmv1.FieldType_FIELD_TYPE_DATETIME:
		return "date-time"
	case crmv1.FieldType_FIELD_TYPE_URL:
		return "URL"
	}
	return "non-searchable"
}

// describe words the query with the schema's labels and the values as typed.
func describe(cmd slash.Command, q *Query) string {
	if q.Kind != KindCriteria {
		return cmd.Describe()
	}
	conds := make([][]slash.Condition, len(q.Fields))
	for _, cr := range cmd.Criteria {
		i := slices.IndexFunc(q.Fields, func(f Field) bool {
			return strings.EqualFold(strings.Join(strings.Fields(f.Label), " "), cr.FieldLabel)
		})
		conds[i] = append(conds[i], slash.Condition{Comparator: cr.Comparator, Values: cr.Values})
	}
	parts := make([]string, len(q.Fields))
	for i, f := range q.Fields {
		parts[i] = slash.DescribeField(f.Label, conds[i])
	}
	return q.Module + " where " + strings.Join(parts, " and ")
}
