package card

import (
	"math"
	"strconv"
	"strings"
	"time"

	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

// Value formats one field value for people, by the field's type when the
// schema knows it and by the value's kind otherwise. It returns "" for an
// empty value, which the card skips. loc is the viewer's time zone for
// datetimes; nil means UTC.
func Value(v *crmv1.FieldValue, meta *crmv1.FieldMeta, loc *time.Location) string {
	switch k := v.GetKind().(type) {
	case *crmv1.FieldValue_Text:
		return strings.TrimSpace(k.Text)
	case *crmv1.FieldValue_Number:
		return number(k.Number, meta)
	case *crmv1.FieldValue_Boolean:
		if k.Boolean {
			return "Yes"
		}
		return "No"
	case *crmv1.FieldValue_Date:
		return date(k.Date)
	case *crmv1.FieldValue_Datetime:
		if k.Datetime == nil {
			return ""
		}
		if loc == nil {
			loc = time.UTC
		}
		return k.Datetime.AsTime().In(loc).Format("Jan 2, 2006 15:04 MST")
	case *crmv1.FieldValue_Multi:
		var vals []string
		for _, s := range k.Multi.GetValues() {
			if s = strings.TrimSpace(s); s != "" {
				vals = append(vals, s)
			}
		}
		return strings.Join(vals, ", ")
	case *crmv1.FieldValue_Lookup:
		if name := strings.TrimSpace(k.Lookup.GetName()); name != "" {
			return name
		}
		return strings.TrimSpace(k.Lookup.GetId())
	}
	return ""
}

func number(f float64, meta *crmv1.FieldMeta) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		// Not a value a CRM field can hold; showing nothing beats "NaN".
		return ""
	}
	switch meta.GetType() {
	case crmv1.FieldType_FIELD_TYPE_CURRENCY:
		s := group(strconv.FormatFloat(f, 'f', 2, 64))
		if code := strings.TrimSpace(meta.GetCurrencyCode()); code != "" {
			return code + " " + s
		}
		return s
	case crmv1.FieldType_FIELD_TYPE_PERCENT:
		return strconv.FormatFloat(f, 'f', -1, 64) + "%"
	case crmv1.FieldType_FIELD_TYPE_INTEGER:
		return group(strconv.FormatFloat(math.Round(f), 'f', 0, 64))
	}
	return group(strconv.FormatFloat(f, 'f', -1, 64))
}

// group puts thousands separators into a formatted decimal number such as
// "-1234567.5".
func group(s string) string {
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	intPart, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	for i, d := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	if hasFrac {
		return sign + b.String() + "." + frac
	}
	return sign + b.String()
}

// date shows an ISO date ("2026-11-25") as "Nov 25, 2026"; anything else is
// shown as the CRM sent it.
func date(s string) string {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.Format("Jan 2, 2006")
	}
	return s
}
