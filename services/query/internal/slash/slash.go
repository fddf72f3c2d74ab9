// Package slash parses the text of a /zcrm slash command into a [Command].
// It knows the language (modules, brackets, comparators) and nothing of any
// module's fields: binding labels to fields is the filter package's job.
//
// Grammar, as the seed documents it and issue 5 decides the gaps:
//
//	command   = [ "/zcrm" ] ( "" | "help" | module | module words | module criteria [ "." ] )
//	criteria  = criterion { [ "," ] criterion }         (spaces optional around the comma)
//	criterion = "[" label "]" comparator ( "[" value { "," value } "]" )
//
// Module names are plural and case-insensitive (leads, contacts, accounts,
// deals). Comparator keywords are case-sensitive and lower case, as the seed
// says ("Tous les comparateurs sont sensibles à la casse"). Spaces around a
// comparator are optional ("[age] <=[40]"). Values are trimmed and never
// empty; a comma always separates values, so "50,000" is two values.
//
// The seed's own example ends with a period after the last "]"; a single
// trailing "." after the criteria is therefore tolerated and ignored.
//
// Slack sends slash-command text with &, < and > escaped as &amp; &lt; &gt;.
// Parse undoes exactly those three entities first, so "[amount] &lt; [20000]"
// is "[amount] < [20000]"; raw < and > are accepted as well. Columns in
// errors count characters of the unescaped text, which is what the user typed.
package slash

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/crmslack/crmslack/libs/slacktext"
)

// Sentinel reasons a text is refused; errors.Is works on a *ParseError.
var (
	ErrSyntax            = errors.New("syntax error")
	ErrUnbalanced        = errors.New("unbalanced brackets")
	ErrEmpty             = errors.New("empty label or value")
	ErrComparator        = errors.New("unknown comparator")
	ErrComparatorCase    = errors.New("comparator not in lower case")
	ErrSingularModule    = errors.New("singular module name")
	ErrUnsupportedModule = errors.New("unsupported module")
)

// ParseError is a refused command text: a message meant for the Slack user
// and, when it points at a place in the text, its 1-based column.
type ParseError struct {
	Reason  error
	Message string
	// Column counts characters (not bytes) from 1; 0 when no place applies.
	Column int
}

func (e *ParseError) Error() string {
	if e.Column > 0 {
		return fmt.Sprintf("%s (at column %d)", e.Message, e.Column)
	}
	return e.Message
}

// Unwrap makes errors.Is(err, ErrUnbalanced) and the like work.
func (e *ParseError) Unwrap() error { return e.Reason }

// Kind tells what a command asks for.
type Kind int

// Command kinds.
const (
	KindHelp Kind = iota + 1
	// KindList: every record of the module.
	KindList
	// KindGlobalSearch: records where every word appears in a searchable field.
	KindGlobalSearch
	// KindCriteria: records matching bracketed criteria.
	KindCriteria
)

// Modules are the CRM API names of the modules slash commands can search,
// in the order the usage card lists them.
var Modules = []string{"Leads", "Contacts", "Accounts", "Deals"}

// Comparator is one of the documented comparators.
type Comparator int

// Comparators. Is and Equals are kept apart because the seed allows "is" on
// text and booleans but only "=" on numbers.
const (
	StartsWith Comparator = iota + 1
	EndsWith
	Is
	Equals
	Contains
	Greater
	Less
	GreaterOrEqual
	LessOrEqual
)

// String is the comparator's canonical English keyword.
func (c Comparator) String() string {
	switch c {
	case StartsWith:
		return "starts with"
	case EndsWith:
		return "ends with"
	case Is:
		return "is"
	case Equals:
		return "="
	case Contains:
		return "contains"
	case Greater:
		return ">"
	case Less:
		return "<"
	case GreaterOrEqual:
		return ">="
	case LessOrEqual:
		return "<="
	}
	return fmt.Sprintf("Comparator(%d)", int(c))
}

// comparators maps every accepted keyword, words separated by one space.
var comparators = map[string]Comparator{
	"starts with": StartsWith, "begins with": StartsWith, "commence par": StartsWith,
	"ends with": EndsWith, "se termine par": EndsWith,
	"is": Is, "est": Is,
	"=":        Equals,
	"contains": Contains, "contient": Contains,
	">": Greater, "<": Less, ">=": GreaterOrEqual, "<=": LessOrEqual,
}

// Criterion is one "[label] comparator [values]" as typed.
type Criterion struct {
	// FieldLabel is trimmed with inner runs of spaces made single.
	FieldLabel string
	Comparator Comparator
	// Values are trimmed, non-empty and OR'ed.
	Values []string
}

// Command is a parsed /zcrm text.
type Command struct {
	Kind Kind
	// Module is the CRM API name ("Leads"); empty for KindHelp.
	Module string
	// Words of a global search, split on spaces.
	Words    []string
	Criteria []Criterion
}

// unescaper undoes Slack's escaping of the command text.
var unescaper = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">")

// Parse reads the text of a /zcrm command (what Slack sends after the
// command name; a leading "/zcrm" is accepted too). A refused text yields a
// *ParseError; Parse never panics.
func Parse(text string) (Command, error) {
	p := parser{src: unescaper.Replace(text)}
	return p.command()
}

type parser struct {
	src string
	pos int // byte offset into src
}

func (p *parser) fail(reason error, at int, format string, args ...any) error {
	col := utf8.RuneCountInString(p.src[:at]) + 1
	return &ParseError{Reason: reason, Message: fmt.Sprintf(format, args...), Column: col}
}

func (p *parser) skipSpace() {
	for p.pos < len(p.src) {
		r, n := utf8.DecodeRuneInString(p.src[p.pos:])
		if !unicode.IsSpace(r) {
			return
		}
		p.pos += n
	}
}

func isSpaceOrBracket(r rune) bool { return unicode.IsSpace(r) || r == '[' || r == ']' }

// word reads up to the next space or bracket.
func (p *parser) word() string {
	start := p.pos
	if i := strings.IndexFunc(p.src[p.pos:], isSpaceOrBracket); i >= 0 {
		p.pos += i
	} else {
		p.pos = len(p.src)
	}
	return p.src[start:p.pos]
}

func (p *parser) command() (Command, error) {
	p.skipSpace()
	if rest, ok := strings.CutPrefix(p.src[p.pos:], "/zcrm"); ok {
		if r, _ := utf8.DecodeRuneInString(rest); rest == "" || isSpaceOrBracket(r) {
			p.pos += len("/zcrm")
			p.skipSpace()
		}
	}
	if p.pos == len(p.src) {
		return Command{Kind: KindHelp}, nil
	}
	at := p.pos
	name := p.word()
	if strings.EqualFold(name, "help") {
		return Command{Kind: KindHelp}, nil
	}
	module, err := p.module(name, at)
	if err != nil {
		return Command{}, err
	}
	p.skipSpace()
	rest := p.src[p.pos:]
	switch {
	case rest == "":
		return Command{Kind: KindList, Module: module}, nil
	case rest[0] == '[':
		criteria, err := p.criteria()
		if err != nil {
			return Command{}, err
		}
		return Command{Kind: KindCriteria, Module: module, Criteria: criteria}, nil
	}
	if i := strings.IndexAny(rest, "[]"); i >= 0 {
		if rest[i] == ']' {
			return Command{}, p.fail(ErrUnbalanced, p.pos+i, "this ] closes no [")
		}
		return Command{}, p.fail(ErrSyntax, p.pos+i,
			"criteria must come right after the module name and start with [field label]; to search for words, leave out the brackets")
	}
	return Command{Kind: KindGlobalSearch, Module: module, Words: strings.Fields(rest)}, nil
}

func (p *parser) module(name string, at int) (string, error) {
	if name == "" {
		return "", p.fail(ErrSyntax, at, "a command starts with a module name: leads, contacts, accounts or deals")
	}
	for _, m := range Modules {
		if strings.EqualFold(name, m) {
			return m, nil
		}
		if strings.EqualFold(name, strings.TrimSuffix(m, "s")) {
			return "", p.fail(ErrSingularModule, at,
				"module names are plural: did you mean %s?", strings.ToLower(m))
		}
	}
	return "", p.fail(ErrUnsupportedModule, at,
		"%q is not a module slash commands can search; use leads, contacts, accounts or deals", name)
}

func (p *parser) criteria() ([]Criterion, error) {
	var out []Criterion
	for {
		c, err := p.criterion()
		if err != nil {
			return nil, err
		}
		out = append(out, c)
		p.skipSpace()
		if p.pos == len(p.src) {
			return out, nil
		}
		if p.src[p.pos] == '.' && strings.TrimSpace(p.src[p.pos+1:]) == "" {
			return out, nil // the seed's trailing period
		}
		if p.src[p.pos] == ',' {
			p.pos++
			p.skipSpace()
		}
		if p.pos == len(p.src) || p.src[p.pos] != '[' {
			return nil, p.fail(ErrSyntax, p.pos, "expected another [field label] criterion")
		}
	}
}

// bracket reads "[...]" at p.pos and returns its inner text and the offset
// of that text.
func (p *parser) bracket(what string) (string, int, error) {
	open := p.pos
	if open == len(p.src) || p.src[open] != '[' {
		return "", 0, p.fail(ErrSyntax, open, "expected [%s]", what)
	}
	inner := open + 1
	end := strings.IndexAny(p.src[inner:], "[]")
	if end < 0 || p.src[inner+end] == '[' {
		return "", 0, p.fail(ErrUnbalanced, open, "the [ opened here is never closed")
	}
	p.pos = inner + end + 1
	return p.src[inner : inner+end], inner, nil
}

func (p *parser) criterion() (Criterion, error) {
	labelAt := p.pos
	label, _, err := p.bracket("field label")
	if err != nil {
		return Criterion{}, err
	}
	label = strings.Join(strings.Fields(label), " ")
	if label == "" {
		return Criterion{}, p.fail(ErrEmpty, labelAt, "empty field label: write it between the brackets, e.g. [last name]")
	}

	p.skipSpace()
	cmpAt := p.pos
	next := strings.IndexAny(p.src[p.pos:], "[]")
	if next < 0 {
		return Criterion{}, p.fail(ErrSyntax, cmpAt, "the value after [%s] must be in brackets, e.g. [%s] is [value]", label, label)
	}
	if p.src[p.pos+next] == ']' {
		return Criterion{}, p.fail(ErrUnbalanced, p.pos+next, "this ] closes no [")
	}
	phrase := strings.Join(strings.Fields(p.src[p.pos:p.pos+next]), " ")
	p.pos += next
	cmp, err := p.comparator(phrase, label, cmpAt)
	if err != nil {
		return Criterion{}, err
	}

	inner, innerAt, err := p.bracket("value")
	if err != nil {
		return Criterion{}, err
	}
	var values []string
	for off := 0; ; {
		v, _, more := strings.Cut(inner[off:], ",")
		if t := strings.TrimSpace(v); t != "" {
			values = append(values, t)
		} else {
			return Criterion{}, p.fail(ErrEmpty, innerAt+off, "empty value for [%s]: write one between the brackets or between the commas", label)
		}
		if !more {
			break
		}
		off += len(v) + 1
	}
	return Criterion{FieldLabel: label, Comparator: cmp, Values: values}, nil
}

func (p *parser) comparator(phrase, label string, at int) (Comparator, error) {
	if phrase == "" {
		return 0, p.fail(ErrComparator, at, "missing comparator after [%s]: use %s", label, comparatorList)
	}
	if c, ok := comparators[phrase]; ok {
		return c, nil
	}
	if _, ok := comparators[strings.ToLower(phrase)]; ok {
		return 0, p.fail(ErrComparatorCase, at,
			"comparators are case-sensitive and written in lower case: write %q, not %q", strings.ToLower(phrase), phrase)
	}
	return 0, p.fail(ErrComparator, at, "unknown comparator %q after [%s]: use %s", phrase, label, comparatorList)
}

const comparatorList = "starts with, begins with, ends with, is, =, contains, >, <, >= or <="

// String renders the command in canonical form, escaped the way Slack sends
// it, so Parse(c.String()) gives c back.
func (c Command) String() string {
	var b strings.Builder
	switch c.Kind {
	case KindHelp:
		return "help"
	case KindList:
		return strings.ToLower(c.Module)
	case KindGlobalSearch:
		b.WriteString(strings.ToLower(c.Module))
		for _, w := range c.Words {
			b.WriteString(" ")
			b.WriteString(slacktext.Escape(w))
		}
	case KindCriteria:
		b.WriteString(strings.ToLower(c.Module))
		for _, cr := range c.Criteria {
			fmt.Fprintf(&b, " [%s] %s [", slacktext.Escape(cr.FieldLabel), slacktext.Escape(cr.Comparator.String()))
			for i, v := range cr.Values {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(slacktext.Escape(v))
			}
			b.WriteString("]")
		}
	}
	return b.String()
}

// Describe says in words how the command was understood, grouping criteria
// on the same label (compared without regard to case) the way they are
// combined: values and same-label criteria OR'ed, labels AND'ed.
func (c Command) Describe() string {
	switch c.Kind {
	case KindHelp:
		return "Help"
	case KindList:
		return "All " + c.Module
	case KindGlobalSearch:
		return fmt.Sprintf("%s containing %s", c.Module, QuoteWords(c.Words))
	}
	var labels []string
	groups := map[string][]Condition{}
	for _, cr := range c.Criteria {
		key := strings.ToLower(cr.FieldLabel)
		if _, seen := groups[key]; !seen {
			labels = append(labels, cr.FieldLabel)
		}
		groups[key] = append(groups[key], Condition{Comparator: cr.Comparator, Values: cr.Values})
	}
	parts := make([]string, len(labels))
	for i, l := range labels {
		parts[i] = DescribeField(l, groups[strings.ToLower(l)])
	}
	return c.Module + " where " + strings.Join(parts, " and ")
}

// Condition is one comparator with its OR'ed values, for [DescribeField].
type Condition struct {
	Comparator Comparator
	Values     []string
}

// DescribeField words the OR'ed conditions on one field:
// "(Company contains zyl or is zylker)". The comparator is repeated only
// when it changes.
func DescribeField(label string, conds []Condition) string {
	var b strings.Builder
	b.WriteString("(" + label)
	var last Comparator
	for i, cd := range conds {
		for j, v := range cd.Values {
			if i > 0 || j > 0 {
				b.WriteString(" or")
			}
			if cd.Comparator != last {
				b.WriteString(" " + cd.Comparator.String())
				last = cd.Comparator
			}
			b.WriteString(" " + v)
		}
	}
	b.WriteString(")")
	return b.String()
}

// QuoteWords renders search words for a description: "zylker" or "peter" and "smith".
func QuoteWords(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = fmt.Sprintf("%q", w)
	}
	return strings.Join(q, " and ")
}
