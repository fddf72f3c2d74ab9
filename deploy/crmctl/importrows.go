package main

import (
	"bufio"
	"bytes"
	"embed"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

// The standard modules' field metadata, used when import gets no -schema.
//
//go:embed schemas/*.json
var defaultSchemas embed.FS

// loadSchema reads a ModuleSchema (protojson) from path, or the built-in
// one of module when path is empty.
func loadSchema(path, module string) (*crmv1.ModuleSchema, error) {
	var data []byte
	var err error
	if path == "" {
		data, err = defaultSchemas.ReadFile("schemas/" + module + ".json")
		if err != nil {
			return nil, fmt.Errorf("no built-in schema for module %q (built in: Leads, Contacts, Accounts, Deals): pass -schema", module)
		}
	} else if data, err = os.ReadFile(path); err != nil {
		return nil, err
	}
	s := &crmv1.ModuleSchema{}
	if err := protojson.Unmarshal(data, s); err != nil {
		return nil, fmt.Errorf("schema %s: %w", path, err)
	}
	if s.GetModule() != module {
		return nil, fmt.Errorf("schema %s is for module %q, not %q", path, s.GetModule(), module)
	}
	seen := map[string]bool{}
	for i, f := range s.GetFields() {
		key := normLabel(f.GetLabel())
		switch {
		case f.GetApiName() == "" || key == "":
			return nil, fmt.Errorf("schema %s: field %d has no API name or label", path, i)
		case f.GetType() == crmv1.FieldType_FIELD_TYPE_UNSPECIFIED:
			return nil, fmt.Errorf("schema %s: field %s has no type", path, f.GetApiName())
		case seen[key]:
			return nil, fmt.Errorf("schema %s: two fields are labelled %q", path, f.GetLabel())
		}
		seen[key] = true
	}
	return s, nil
}

// normLabel is how a CSV header matches a field label: case and runs of
// white space do not matter.
func normLabel(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }

// Header labels that are not fields: the record's id and, optionally, its
// version.
var (
	idLabels      = map[string]bool{"record id": true, "id": true, "record_id": true}
	versionLabels = map[string]bool{"version": true}
)

// rowError is one problem of one input row.
type rowError struct {
	Line int
	Msg  string
}

func (e rowError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

// row is a parsed, valid input row: its record's id, version and
// encoding. Every row is held until the whole file is known valid, so a
// row is kept encoded, not as a crm.v1.Record: a million messages with a
// map of fields each would be marked again by every collection of the
// import (and sized, then encoded, once more to be published).
type row struct {
	Line    int
	ID      string
	Version int64
	Data    []byte
}

// keep adds a valid record read on line to rows, encoded (in scratch,
// then copied to its size), unless an earlier line (in ids, by record id)
// has its id: then, or if it cannot be encoded, the line is one of errs.
func keep(rows []row, errs []rowError, ids map[string]int, scratch *[]byte, line int, rec *crmv1.Record) ([]row, []rowError) {
	if first, dup := ids[rec.GetId()]; dup {
		return rows, append(errs, rowError{Line: line, Msg: fmt.Sprintf("record id %q already on line %d", rec.GetId(), first)})
	}
	var err error
	if *scratch, err = appendRecord((*scratch)[:0], rec); err != nil {
		return rows, append(errs, rowError{Line: line, Msg: "encoding: " + err.Error()})
	}
	ids[rec.GetId()] = line
	return append(rows, row{Line: line, ID: rec.GetId(), Version: rec.GetVersion(), Data: bytes.Clone(*scratch)}), errs
}

// csvColumns maps a CSV header to the schema: for each column the field it
// fills, or the id or version; unknown columns are an error unless
// ignoreUnknown, in which case they are returned as ignored.
type csvColumns struct {
	fields  []*crmv1.FieldMeta // nil for id, version and ignored columns
	id      int
	version int // -1 when absent
	ignored []string
}

func mapHeader(header []string, schema *crmv1.ModuleSchema, ignoreUnknown bool) (*csvColumns, error) {
	byLabel := map[string]*crmv1.FieldMeta{}
	for _, f := range schema.GetFields() {
		byLabel[normLabel(f.GetLabel())] = f
	}
	c := &csvColumns{fields: make([]*crmv1.FieldMeta, len(header)), id: -1, version: -1}
	var errs []error
	used := map[string]int{}
	for i, h := range header {
		key := normLabel(h)
		if i == 0 {
			key = normLabel(strings.TrimPrefix(h, "\ufeff")) // Excel's byte-order mark
		}
		switch {
		case key == "":
			errs = append(errs, fmt.Errorf("column %d has an empty header", i+1))
			continue
		case idLabels[key] && byLabel[key] == nil:
			if c.id >= 0 {
				errs = append(errs, fmt.Errorf("columns %d and %d both hold the record id", c.id+1, i+1))
			}
			c.id = i
			continue
		case versionLabels[key] && byLabel[key] == nil:
			c.version = i
			continue
		}
		f := byLabel[key]
		if f == nil {
			if ignoreUnknown {
				c.ignored = append(c.ignored, h)
				continue
			}
			errs = append(errs, fmt.Errorf("column %d %q is no field of %s", i+1, h, schema.GetModule()))
			continue
		}
		if j, dup := used[f.GetApiName()]; dup {
			errs = append(errs, fmt.Errorf("columns %d and %d are both %q", j+1, i+1, f.GetLabel()))
			continue
		}
		used[f.GetApiName()] = i
		c.fields[i] = f
	}
	if c.id < 0 {
		errs = append(errs, errors.New(`no "Record Id" column: every row needs the record's id`))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("header (line 1): %w", errors.Join(errs...))
	}
	return c, nil
}

// parseRow builds a record from one CSV row. Cells are typed by their
// field's type; an empty cell leaves the field out. Every bad cell is
// reported.
func parseRow(cols *csvColumns, schema *crmv1.ModuleSchema, cells []string, defaultVersion int64) (*crmv1.Record, error) {
	if len(cells) != len(cols.fields) {
		return nil, fmt.Errorf("%d cells, the header has %d", len(cells), len(cols.fields))
	}
	rec := &crmv1.Record{Module: schema.GetModule(), Id: strings.TrimSpace(cells[cols.id]), Version: defaultVersion, Fields: map[string]*crmv1.FieldValue{}}
	var errs []error
	if err := checkID(rec.GetId()); err != nil {
		errs = append(errs, err)
	}
	if cols.version >= 0 {
		if v := strings.TrimSpace(cells[cols.version]); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 {
				errs = append(errs, fmt.Errorf("version %q is not a positive whole number", v))
			} else {
				rec.Version = n
			}
		}
	}
	for i, f := range cols.fields {
		if f == nil {
			continue
		}
		v, err := typedValue(f, cells[i])
		if err != nil {
			errs = append(errs, fmt.Errorf("%q: %w", f.GetLabel(), err))
			continue
		}
		if v != nil {
			rec.Fields[f.GetApiName()] = v
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	completeDisplayName(rec, schema)
	return rec, nil
}

func checkID(id string) error {
	switch {
	case id == "":
		return errors.New("no record id")
	case len(id) > 200:
		return fmt.Errorf("record id of %d bytes (at most 200)", len(id))
	case !utf8.ValidString(id) || strings.ContainsFunc(id, unicode.IsControl):
		return fmt.Errorf("record id %q has control characters or invalid UTF-8", id)
	}
	return nil
}

// completeDisplayName fills a person's Full_Name from first and last name
// when the export left it out, so the record has a title and sorts.
func completeDisplayName(rec *crmv1.Record, schema *crmv1.ModuleSchema) {
	if schema.GetDisplayField() != "Full_Name" || rec.GetFields()["Full_Name"] != nil {
		return
	}
	name := strings.TrimSpace(rec.GetFields()["First_Name"].GetText() + " " + rec.GetFields()["Last_Name"].GetText())
	if name != "" {
		rec.Fields["Full_Name"] = &crmv1.FieldValue{Kind: &crmv1.FieldValue_Text{Text: name}}
	}
}

// typedValue reads one cell as a value of the field's type; nil for an
// empty cell.
func typedValue(f *crmv1.FieldMeta, cell string) (*crmv1.FieldValue, error) {
	s := strings.TrimSpace(cell)
	if s == "" {
		return nil, nil
	}
	if !utf8.ValidString(s) {
		return nil, errors.New("not valid UTF-8")
	}
	switch f.GetType() {
	case crmv1.FieldType_FIELD_TYPE_EMAIL:
		if !strings.Contains(s, "@") || strings.ContainsAny(s, " \t") {
			return nil, fmt.Errorf("%q is not an email address", s)
		}
		return text(s), nil
	case crmv1.FieldType_FIELD_TYPE_MULTI_PICKLIST:
		var vals []string
		for v := range strings.SplitSeq(s, ";") {
			if v = strings.TrimSpace(v); v != "" {
				vals = append(vals, v)
			}
		}
		if len(vals) == 0 {
			return nil, nil
		}
		return &crmv1.FieldValue{Kind: &crmv1.FieldValue_Multi{Multi: &crmv1.StringList{Values: vals}}}, nil
	case crmv1.FieldType_FIELD_TYPE_LOOKUP, crmv1.FieldType_FIELD_TYPE_OWNER:
		return &crmv1.FieldValue{Kind: &crmv1.FieldValue_Lookup{Lookup: &crmv1.LookupValue{Name: s, Module: f.GetLookupModule()}}}, nil
	case crmv1.FieldType_FIELD_TYPE_INTEGER:
		n, err := parseNumber(s)
		if err != nil {
			return nil, err
		}
		if n != math.Trunc(n) {
			return nil, fmt.Errorf("%q is not a whole number", s)
		}
		return number(n), nil
	case crmv1.FieldType_FIELD_TYPE_DECIMAL, crmv1.FieldType_FIELD_TYPE_CURRENCY, crmv1.FieldType_FIELD_TYPE_PERCENT:
		n, err := parseNumber(s)
		if err != nil {
			return nil, err
		}
		return number(n), nil
	case crmv1.FieldType_FIELD_TYPE_BOOLEAN:
		switch strings.ToLower(s) {
		case "true", "yes", "1", "vrai", "oui":
			return &crmv1.FieldValue{Kind: &crmv1.FieldValue_Boolean{Boolean: true}}, nil
		case "false", "no", "0", "faux", "non":
			return &crmv1.FieldValue{Kind: &crmv1.FieldValue_Boolean{Boolean: false}}, nil
		}
		return nil, fmt.Errorf("%q is not true or false", s)
	case crmv1.FieldType_FIELD_TYPE_DATE:
		if _, err := time.Parse(time.DateOnly, s); err != nil {
			return nil, fmt.Errorf("%q is not a date written 2006-01-02", s)
		}
		return &crmv1.FieldValue{Kind: &crmv1.FieldValue_Date{Date: s}}, nil
	case crmv1.FieldType_FIELD_TYPE_DATETIME:
		for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", time.DateTime} {
			if t, err := time.Parse(layout, s); err == nil {
				return &crmv1.FieldValue{Kind: &crmv1.FieldValue_Datetime{Datetime: timestamppb.New(t)}}, nil
			}
		}
		return nil, fmt.Errorf("%q is not a date and time written 2006-01-02T15:04:05Z07:00 or 2006-01-02 15:04:05 (UTC)", s)
	}
	// Single and multi-line, phone, URL, picklist, salutation, and types
	// added later: text as written.
	return text(s), nil
}

func text(s string) *crmv1.FieldValue {
	return &crmv1.FieldValue{Kind: &crmv1.FieldValue_Text{Text: s}}
}

func number(n float64) *crmv1.FieldValue {
	return &crmv1.FieldValue{Kind: &crmv1.FieldValue_Number{Number: n}}
}

// parseNumber reads a number as CRM exports write it: an optional currency
// code or symbol before or after, an optional trailing %, "," grouping
// thousands and "." as the decimal point ("USD 1,250,000.50", "15 %").
func parseNumber(s string) (float64, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSuffix(t, "%")
	t = strings.TrimFunc(t, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsLetter(r) || unicode.Is(unicode.Sc, r)
	})
	if t == "" {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if strings.Contains(t, ",") {
		intPart, frac, _ := strings.Cut(t, ".")
		groups := strings.Split(strings.TrimLeft(intPart, "+-"), ",")
		for i, g := range groups {
			if (i == 0 && (len(g) < 1 || len(g) > 3)) || (i > 0 && len(g) != 3) {
				return 0, fmt.Errorf("%q is not a number (a comma may only group thousands)", s)
			}
		}
		t = strings.ReplaceAll(intPart, ",", "")
		if frac != "" || strings.Contains(s, ".") {
			t += "." + frac
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return n, nil
}

// readCSV parses a whole CSV export: every valid row, and every problem
// with its line number. A malformed file (an unclosed quote) stops the
// parse at that line: what follows cannot be trusted.
func readCSV(r io.Reader, comma rune, schema *crmv1.ModuleSchema, ignoreUnknown bool, defaultVersion int64) ([]row, *csvColumns, []rowError) {
	cr := csv.NewReader(r)
	cr.Comma = comma
	cr.FieldsPerRecord = -1 // counted per row, so every short row is reported
	header, err := cr.Read()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil, []rowError{{Line: 1, Msg: "the file is empty: a header row of field labels is required"}}
		}
		return nil, nil, []rowError{{Line: 1, Msg: err.Error()}}
	}
	cols, err := mapHeader(header, schema, ignoreUnknown)
	if err != nil {
		return nil, nil, []rowError{{Msg: err.Error()}}
	}
	var rows []row
	var errs []rowError
	ids := map[string]int{}
	var scratch []byte
	for {
		cells, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			line := 0
			if errors.As(err, &pe) {
				line = pe.StartLine
			}
			errs = append(errs, rowError{Line: line, Msg: err.Error() + "; nothing after this point was read"})
			break
		}
		line, _ := cr.FieldPos(0)
		if len(cells) == 1 && strings.TrimSpace(cells[0]) == "" {
			continue // a blank line
		}
		rec, err := parseRow(cols, schema, cells, defaultVersion)
		if err != nil {
			errs = append(errs, rowError{Line: line, Msg: strings.ReplaceAll(err.Error(), "\n", "; ")})
			continue
		}
		rows, errs = keep(rows, errs, ids, &scratch, line, rec)
	}
	return rows, cols, errs
}

// readNDJSON parses records, one a line, in either of two shapes: a
// protojson crm.v1.Record (an object with "fields", keyed by API name), or
// a CRM export's flat object keyed by field labels, like a CSV row
// ({"Record Id": "d1", "Deal Name": "Zylker", "Amount": 250000}). Each
// value must fit its field's type; a record without a module takes the
// import's, one of another module is an error.
func readNDJSON(r io.Reader, schema *crmv1.ModuleSchema, ignoreUnknown bool, defaultVersion int64) ([]row, []rowError) {
	byAPI := map[string]*crmv1.FieldMeta{}
	for _, f := range schema.GetFields() {
		byAPI[f.GetApiName()] = f
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	var rows []row
	var errs []rowError
	ids := map[string]int{}
	var scratch []byte
	for line := 1; sc.Scan(); line++ {
		data := bytes.TrimSpace(sc.Bytes())
		if len(data) == 0 {
			continue
		}
		rec := &crmv1.Record{}
		if flat, ok := labelled(data); ok {
			var err error
			if rec, err = labelledRecord(flat, schema, ignoreUnknown, defaultVersion); err != nil {
				errs = append(errs, rowError{Line: line, Msg: err.Error()})
				continue
			}
		} else if err := protojson.Unmarshal(data, rec); err != nil {
			errs = append(errs, rowError{Line: line, Msg: "not a record: " + err.Error()})
			continue
		}
		if rec.Module == "" {
			rec.Module = schema.GetModule()
		}
		if rec.Version == 0 {
			rec.Version = defaultVersion
		}
		var problems []string
		if rec.GetModule() != schema.GetModule() {
			problems = append(problems, fmt.Sprintf("a %s record in an import of %s", rec.GetModule(), schema.GetModule()))
		}
		if err := checkID(rec.GetId()); err != nil {
			problems = append(problems, err.Error())
		}
		if rec.GetVersion() < 0 {
			problems = append(problems, "negative version")
		}
		for api, v := range rec.GetFields() {
			f := byAPI[api]
			switch {
			case f == nil && ignoreUnknown:
				delete(rec.Fields, api)
			case f == nil:
				problems = append(problems, fmt.Sprintf("%q is no field of %s", api, schema.GetModule()))
			default:
				if err := fits(f, v); err != nil {
					problems = append(problems, fmt.Sprintf("%s: %v", api, err))
				}
			}
		}
		if len(problems) > 0 {
			slices.Sort(problems) // map order is random; a report should not be
			errs = append(errs, rowError{Line: line, Msg: strings.Join(problems, "; ")})
			continue
		}
		completeDisplayName(rec, schema)
		rows, errs = keep(rows, errs, ids, &scratch, line, rec)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, rowError{Msg: err.Error() + "; nothing after this point was read"})
	}
	return rows, errs
}

// fits checks a value's kind against its field's type.
func fits(f *crmv1.FieldMeta, v *crmv1.FieldValue) error {
	var want string
	switch v.GetKind().(type) {
	case nil:
		return nil
	case *crmv1.FieldValue_Number:
		switch f.GetType() {
		case crmv1.FieldType_FIELD_TYPE_INTEGER, crmv1.FieldType_FIELD_TYPE_DECIMAL, crmv1.FieldType_FIELD_TYPE_CURRENCY, crmv1.FieldType_FIELD_TYPE_PERCENT:
			if n := v.GetNumber(); math.IsNaN(n) || math.IsInf(n, 0) {
				return errors.New("not a finite number")
			}
			return nil
		}
		want = "number"
	case *crmv1.FieldValue_Boolean:
		if f.GetType() == crmv1.FieldType_FIELD_TYPE_BOOLEAN {
			return nil
		}
		want = "boolean"
	case *crmv1.FieldValue_Date:
		if f.GetType() == crmv1.FieldType_FIELD_TYPE_DATE {
			if _, err := time.Parse(time.DateOnly, v.GetDate()); err != nil {
				return fmt.Errorf("%q is not a date written 2006-01-02", v.GetDate())
			}
			return nil
		}
		want = "date"
	case *crmv1.FieldValue_Datetime:
		if f.GetType() == crmv1.FieldType_FIELD_TYPE_DATETIME {
			return nil
		}
		want = "datetime"
	case *crmv1.FieldValue_Multi:
		if f.GetType() == crmv1.FieldType_FIELD_TYPE_MULTI_PICKLIST {
			return nil
		}
		want = "multi"
	case *crmv1.FieldValue_Lookup:
		if f.GetType() == crmv1.FieldType_FIELD_TYPE_LOOKUP || f.GetType() == crmv1.FieldType_FIELD_TYPE_OWNER {
			return nil
		}
		want = "lookup"
	case *crmv1.FieldValue_Text:
		switch f.GetType() {
		case crmv1.FieldType_FIELD_TYPE_SINGLE_LINE, crmv1.FieldType_FIELD_TYPE_MULTI_LINE, crmv1.FieldType_FIELD_TYPE_EMAIL,
			crmv1.FieldType_FIELD_TYPE_PHONE, crmv1.FieldType_FIELD_TYPE_URL, crmv1.FieldType_FIELD_TYPE_PICKLIST, crmv1.FieldType_FIELD_TYPE_SALUTATION:
			return nil
		}
		want = "text"
	}
	return fmt.Errorf("a %s value in a %s field", want, strings.ToLower(strings.TrimPrefix(f.GetType().String(), "FIELD_TYPE_")))
}

// recordKeys are crm.v1.Record's JSON names: a line keyed by them only is
// a protojson record.
var recordKeys = map[string]bool{"module": true, "id": true, "version": true, "owner": true, "fields": true, "modifiedAt": true, "modified_at": true, "url": true}

// labelled reads a line as an object keyed by field labels: an object
// with some key that is no crm.v1.Record field.
func labelled(data []byte) (map[string]any, bool) {
	var obj map[string]any
	if json.Unmarshal(data, &obj) != nil {
		return nil, false
	}
	for k := range obj {
		if !recordKeys[k] {
			return obj, true
		}
	}
	return nil, false
}

// labelledRecord builds a record from an object keyed by labels, typed as
// a CSV row is: keys are the header, values the cells (lists joined by
// ";", as a multi-select picklist is written in a CSV).
func labelledRecord(obj map[string]any, schema *crmv1.ModuleSchema, ignoreUnknown bool, defaultVersion int64) (*crmv1.Record, error) {
	header := make([]string, 0, len(obj))
	for k := range obj {
		header = append(header, k)
	}
	slices.Sort(header) // map order is random; a report should not be
	cells := make([]string, len(header))
	for i, k := range header {
		c, err := cell(obj[k])
		if err != nil {
			return nil, fmt.Errorf("%q: %w", k, err)
		}
		cells[i] = c
	}
	cols, err := mapHeader(header, schema, ignoreUnknown)
	if err != nil {
		return nil, errors.New(strings.Replace(err.Error(), "header (line 1): ", "", 1))
	}
	return parseRow(cols, schema, cells, defaultVersion)
}

// cell writes a JSON value as a CSV cell.
func cell(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	case []any:
		parts := make([]string, 0, len(v))
		for _, e := range v {
			c, err := cell(e)
			if err != nil {
				return "", err
			}
			if _, nested := e.([]any); nested {
				return "", errors.New("a list inside a list")
			}
			parts = append(parts, c)
		}
		return strings.Join(parts, ";"), nil
	default:
		return "", errors.New("an object, not a value")
	}
}
