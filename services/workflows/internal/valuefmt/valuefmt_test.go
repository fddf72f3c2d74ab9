package valuefmt

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

func num(n float64) *crmv1.FieldValue {
	return &crmv1.FieldValue{Kind: &crmv1.FieldValue_Number{Number: n}}
}

func TestValue(t *testing.T) {
	t.Parallel()
	eur := &crmv1.FieldMeta{Type: crmv1.FieldType_FIELD_TYPE_CURRENCY, CurrencyCode: "EUR"}
	noCode := &crmv1.FieldMeta{Type: crmv1.FieldType_FIELD_TYPE_CURRENCY}
	jpy := &crmv1.FieldMeta{Type: crmv1.FieldType_FIELD_TYPE_CURRENCY, CurrencyCode: "JPY"}
	pct := &crmv1.FieldMeta{Type: crmv1.FieldType_FIELD_TYPE_PERCENT}
	integer := &crmv1.FieldMeta{Type: crmv1.FieldType_FIELD_TYPE_INTEGER}
	at := timestamppb.New(time.Date(2026, 12, 15, 17, 30, 0, 0, time.UTC))
	for _, tc := range []struct {
		locale, currency, zone string
		v                      *crmv1.FieldValue
		meta                   *crmv1.FieldMeta
		want                   string
	}{
		{"en-US", "", "", num(12500), eur, "€12,500.00"},
		{"fr-FR", "", "", num(12500), eur, "12\u00a0500,00\u00a0€"},
		{"de-DE", "", "", num(-1234567.5), eur, "-1.234.567,50\u00a0€"},
		{"en-US", "GBP", "", num(99.999), noCode, "£100.00"},
		{"en-US", "", "", num(5000), jpy, "¥5,000"},
		{"en-US", "CHF", "", num(10), noCode, "CHF\u00a010.00"},
		{"en-US", "", "", num(12.5), pct, "12.5%"},
		{"fr-FR", "", "", num(12.5), pct, "12,5\u00a0%"},
		{"en-US", "", "", num(1234.6), integer, "1,235"},
		{"en-US", "", "", num(1234.25), nil, "1,234.25"},
		{"en-US", "", "", &crmv1.FieldValue{Kind: &crmv1.FieldValue_Boolean{Boolean: true}}, nil, "Yes"},
		{"fr-FR", "", "", &crmv1.FieldValue{Kind: &crmv1.FieldValue_Boolean{}}, nil, "Non"},
		{"en-US", "", "", &crmv1.FieldValue{Kind: &crmv1.FieldValue_Date{Date: "2026-12-15"}}, nil, "Dec 15, 2026"},
		{"fr-FR", "", "", &crmv1.FieldValue{Kind: &crmv1.FieldValue_Date{Date: "2026-12-15"}}, nil, "15/12/2026"},
		{"en-US", "", "", &crmv1.FieldValue{Kind: &crmv1.FieldValue_Date{Date: "soon"}}, nil, "soon"},
		{"en-US", "", "America/New_York", &crmv1.FieldValue{Kind: &crmv1.FieldValue_Datetime{Datetime: at}}, nil, "Dec 15, 2026 12:30 PM EST"},
		{"de-DE", "", "Europe/Berlin", &crmv1.FieldValue{Kind: &crmv1.FieldValue_Datetime{Datetime: at}}, nil, "15.12.2026 18:30 CET"},
		{"en-US", "", "", &crmv1.FieldValue{Kind: &crmv1.FieldValue_Multi{Multi: &crmv1.StringList{Values: []string{"A", " ", "B "}}}}, nil, "A, B"},
		{"en-US", "", "", &crmv1.FieldValue{Kind: &crmv1.FieldValue_Lookup{Lookup: &crmv1.LookupValue{Id: "a1", Name: "Zylker"}}}, nil, "Zylker"},
		{"en-US", "", "", &crmv1.FieldValue{Kind: &crmv1.FieldValue_Lookup{Lookup: &crmv1.LookupValue{Id: "a1"}}}, nil, "a1"},
		{"en-US", "", "", &crmv1.FieldValue{Kind: &crmv1.FieldValue_Text{Text: " two\nlines "}}, nil, "two lines"},
		{"en-US", "", "", &crmv1.FieldValue{Kind: &crmv1.FieldValue_Text{Text: "two\nlines"}}, &crmv1.FieldMeta{Type: crmv1.FieldType_FIELD_TYPE_MULTI_LINE}, "two\nlines"},
		{"en-US", "", "", nil, nil, Missing},
		{"en-US", "", "", &crmv1.FieldValue{Kind: &crmv1.FieldValue_Text{Text: "  "}}, nil, Missing},
	} {
		f, err := New(tc.locale, tc.currency, tc.zone)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Value(tc.v, tc.meta); got != tc.want {
			t.Errorf("%s %v: got %q, want %q", tc.locale, tc.v, got, tc.want)
		}
	}
}

func TestNewRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range [][3]string{{"xx-YY", "", ""}, {"", "EURO", ""}, {"", "", "Mars/Olympus"}, {"", "", "Local"}} {
		if _, err := New(tc[0], tc[1], tc[2]); !errors.Is(err, ErrFormat) {
			t.Errorf("New%v = %v, want ErrFormat", tc, err)
		}
	}
	f, err := New("FR-fr", "eur", "Europe/Paris")
	if err != nil || f.Locale() != "fr-FR" || f.Currency() != "EUR" || f.TimeZone() != "Europe/Paris" {
		t.Errorf("canonical form: %+v %v", f, err)
	}
}
