package card_test

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/blockkit"
	"github.com/crmslack/crmslack/libs/card"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

// FuzzRender: whatever the CRM sends as labels and values, the blocks stay
// within Slack's limits and nothing panics.
func FuzzRender(f *testing.F) {
	f.Add("Deals", "Amount", "Q4 & <co>", 1234.5, "2026-11-25", int64(0), "msg", "Ada", "d1")
	f.Add("", "", "", math.Inf(1), "", int64(-1), "", "", "")
	f.Add("Custom_*_Module", "\xff\xfe", "\u200b", math.NaN(), "9999-99-99", int64(1<<40), "<!channel>", "&&&", "x|y")
	f.Fuzz(func(t *testing.T, module, label, txt string, n float64, day string, unix int64, message, sharedBy, id string) {
		types := []crmv1.FieldType{tText, tCurrency, tPercent, tInt, tBool, tDate, tDatetime, tMulti, tLookup}
		values := []*crmv1.FieldValue{text(txt), num(n), num(n), num(n), boolean(n > 0), date(day),
			{Kind: &crmv1.FieldValue_Datetime{Datetime: &timestamppb.Timestamp{Seconds: unix % (1 << 36)}}},
			multi(txt, label, day), lookup(module, id, txt)}
		schema := &crmv1.ModuleSchema{Module: module, SingularLabel: label, PluralLabel: label, DisplayField: "F0"}
		rec := &crmv1.Record{Module: module, Id: id, Url: txt, Fields: map[string]*crmv1.FieldValue{}}
		for i, typ := range types {
			api := "F" + string(rune('0'+i))
			m := fm(api, label+txt, typ)
			m.CurrencyCode = label
			schema.Fields = append(schema.Fields, m)
			rec.Fields[api] = values[i]
		}
		buttons := []card.Button{{Text: "Share this record", ActionID: card.ShareActionID, Value: label + module + id}, {Text: label + txt, ActionID: "other", Value: day}}
		config := card.Config{BaseURL: "https://crm.example.com", KeyFields: map[string][]string{"Deals": {"F1", "F2", "Owner"}}}

		c, err := card.Render(card.Input{Config: config, Record: rec, Schema: schema, Message: message, SharedBy: sharedBy, Location: time.FixedZone("x", 3600), Buttons: buttons})
		check(t, c, err)
		recs := []*crmv1.Record{rec, rec, rec, rec, rec, rec, rec, rec, rec, rec, rec, rec}
		c, err = card.RenderList(card.ListInput{Config: config, Schema: schema, Records: recs, Buttons: func(*crmv1.Record) []card.Button { return buttons }})
		check(t, c, err)
	})
}

func check(t *testing.T, c card.Card, err error) {
	t.Helper()
	if err != nil {
		// A button that cannot carry its reference is refused, never cut.
		if !errors.Is(err, card.ErrBadButton) {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err := checkText(c.Text, blockkit.MaxMessageText); err != nil {
		t.Fatalf("fallback text: %v", err)
	}
	raw, err := json.Marshal(slack.Blocks{BlockSet: c.Blocks})
	if err != nil {
		t.Fatal(err)
	}
	if err := checkBlocks(raw); err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	if err := blockkit.Validate(raw); err != nil {
		t.Fatalf("Slack would refuse the blocks: %v\n%s", err, raw)
	}
}

// FuzzOpenGrant: a button value from Slack never panics the checker, and
// nothing but a value it signed is accepted.
func FuzzOpenGrant(f *testing.F) {
	b, err := card.NewButtons(nil, []byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		f.Fatal(err)
	}
	signed, err := b.ShareButton(card.Grant{Ref: card.Ref{Org: "org1", Module: "Deals", ID: "d1"}, Team: "T1", Channel: "C1", User: "U1"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(signed.Value)
	f.Add(`{"o":"org1","m":"Deals","i":"d1"}`)
	f.Add("b1.e30.AAAA")
	f.Fuzz(func(t *testing.T, value string) {
		ref, err := b.Open(value, "T1", "C1", "U1")
		if err == nil && (value != signed.Value || ref != (card.Ref{Org: "org1", Module: "Deals", ID: "d1"})) {
			t.Fatalf("accepted %q as %+v", value, ref)
		}
	})
}
