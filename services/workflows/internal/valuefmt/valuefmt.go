// Package valuefmt writes CRM field values for people, by field type and by
// the org's locale, currency and time zone: "€12,500.00" for en-US,
// "12 500,00 €" for fr-FR. The output is plain text; escaping it for Slack
// is the template renderer's job.
package valuefmt

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

// Missing stands for an empty value, so a reader sees that the field had
// none rather than a gap or a raw tag.
const Missing = "—"

// Defaults of an org that never set its format.
const (
	DefaultLocale   = "en-US"
	DefaultCurrency = "USD"
	DefaultTimeZone = "UTC"
)

var ErrFormat = errors.New("valuefmt: invalid format")

// Format is an org's way of writing values; build it with [New].
type Format struct {
	locale   locale
	tag      string
	currency string
	zone     *time.Location
}

// New checks and builds a format; empty arguments take the defaults.
func New(localeTag, currency, timeZone string) (Format, error) {
	if localeTag == "" {
		localeTag = DefaultLocale
	}
	if currency == "" {
		currency = DefaultCurrency
	}
	if timeZone == "" {
		timeZone = DefaultTimeZone
	}
	l, ok := locales[strings.ToLower(localeTag)]
	if !ok {
		return Format{}, fmt.Errorf("%w: locale %q is not one of %s", ErrFormat, localeTag, strings.Join(Locales(), ", "))
	}
	currency = strings.ToUpper(strings.TrimSpace(currency))
	if !validCurrency(currency) {
		return Format{}, fmt.Errorf("%w: currency %q is not an ISO 4217 code", ErrFormat, currency)
	}
	zone, err := time.LoadLocation(timeZone)
	if err != nil || timeZone == "Local" {
		return Format{}, fmt.Errorf("%w: time zone %q is not an IANA zone", ErrFormat, timeZone)
	}
	return Format{locale: l, tag: l.tag, currency: currency, zone: zone}, nil
}

var defaultFormat, _ = New("", "", "")

// Default is en-US, USD, UTC.
func Default() Format { return defaultFormat }

// Locale, Currency and TimeZone are the format's settings, canonical.
func (f Format) Locale() string   { return f.tag }
func (f Format) Currency() string { return f.currency }
func (f Format) TimeZone() string { return f.zone.String() }

func validCurrency(c string) bool {
	if len(c) != 3 {
		return false
	}
	for _, r := range c {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

// Value writes v, a value of the field meta describes (nil: by the value's
// kind). An empty value is [Missing].
func (f Format) Value(v *crmv1.FieldValue, meta *crmv1.FieldMeta) string {
	if f.zone == nil {
		f = Default()
	}
	var s string
	switch k := v.GetKind().(type) {
	case *crmv1.FieldValue_Text:
		s = strings.TrimSpace(k.Text)
		if meta.GetType() != crmv1.FieldType_FIELD_TYPE_MULTI_LINE {
			s = strings.Join(strings.Fields(s), " ")
		}
	case *crmv1.FieldValue_Number:
		s = f.number(k.Number, meta)
	case *crmv1.FieldValue_Boolean:
		s = f.locale.no
		if k.Boolean {
			s = f.locale.yes
		}
	case *crmv1.FieldValue_Date:
		s = f.date(k.Date)
	case *crmv1.FieldValue_Datetime:
		if k.Datetime != nil && k.Datetime.IsValid() {
			s = k.Datetime.AsTime().In(f.zone).Format(f.locale.dateTime)
		}
	case *crmv1.FieldValue_Multi:
		var vals []string
		for _, e := range k.Multi.GetValues() {
			if e = strings.TrimSpace(e); e != "" {
				vals = append(vals, e)
			}
		}
		s = strings.Join(vals, ", ")
	case *crmv1.FieldValue_Lookup:
		s = strings.TrimSpace(k.Lookup.GetName())
		if s == "" {
			s = strings.TrimSpace(k.Lookup.GetId())
		}
	}
	if s == "" {
		return Missing
	}
	return s
}

func (f Format) number(n float64, meta *crmv1.FieldMeta) string {
	if math.IsNaN(n) || math.IsInf(n, 0) {
		return ""
	}
	switch meta.GetType() {
	case crmv1.FieldType_FIELD_TYPE_CURRENCY:
		code := strings.ToUpper(strings.TrimSpace(meta.GetCurrencyCode()))
		if !validCurrency(code) {
			code = f.currency
		}
		return f.Money(n, code)
	case crmv1.FieldType_FIELD_TYPE_PERCENT:
		return f.decimal(strconv.FormatFloat(n, 'f', -1, 64)) + f.locale.percent
	case crmv1.FieldType_FIELD_TYPE_INTEGER:
		return f.decimal(strconv.FormatFloat(math.Round(n), 'f', 0, 64))
	}
	return f.decimal(strconv.FormatFloat(n, 'f', -1, 64))
}

// Money writes an amount in a currency: its symbol where the locale puts
// it, its usual number of decimals.
func (f Format) Money(n float64, code string) string {
	digits := 2
	if d, ok := currencyDigits[code]; ok {
		digits = d
	}
	s := f.decimal(strconv.FormatFloat(n, 'f', digits, 64))
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	sym, ok := symbols[code]
	if !ok {
		sym = code
	}
	if f.locale.symbolAfter {
		return sign + s + nbsp + sym
	}
	if !ok || len([]rune(sym)) > 1 && sym[len(sym)-1] >= 'A' {
		// A code or a lettered symbol ("CHF", "R$") reads better spaced.
		return sign + sym + nbsp + s
	}
	return sign + sym + s
}

// decimal localises a number strconv wrote ("-1234567.5"): grouping marks
// and the decimal mark.
func (f Format) decimal(s string) string {
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	intPart, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	b.WriteString(sign)
	for i, d := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteString(f.locale.group)
		}
		b.WriteRune(d)
	}
	if hasFrac {
		b.WriteString(f.locale.decimal + frac)
	}
	return b.String()
}

// date writes an ISO date ("2026-11-25") the locale's way; anything else
// is written as the CRM sent it.
func (f Format) date(s string) string {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.Format(f.locale.date)
	}
	return s
}

// Location is the format's time zone.
func (f Format) Location() *time.Location {
	if f.zone == nil {
		return time.UTC
	}
	return f.zone
}
