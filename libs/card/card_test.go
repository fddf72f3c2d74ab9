package card_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/crmslack/crmslack/libs/blockkit"
	"github.com/crmslack/crmslack/libs/card"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the current output")

var cfg = card.Config{BaseURL: "https://crm.example.com/crm/org1/tab"}

func shareButtons(r *crmv1.Record) []card.Button {
	return []card.Button{{Text: "Share this record", ActionID: card.ShareActionID, Value: "org1/" + r.GetModule() + "/" + r.GetId()}}
}

func paris(tb testing.TB) *time.Location {
	tb.Helper()
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		tb.Fatalf("loading time zone: %v", err)
	}
	return loc
}

func goldenCases(tb testing.TB) map[string]func() (card.Card, error) {
	long := strings.Repeat("Very & <long> ", 400)
	overlong := deal("d999", strings.Repeat("Huge deal & co ", 20), 1e12)
	overlong.Fields["Stage"] = text(long)
	overlong.Fields["Account_Name"] = lookup("Accounts", "a1", long)
	overlong.Url = "https://crm.example.com/" + strings.Repeat("x", 3000)
	tenDeals := make([]*crmv1.Record, 12)
	for i := range tenDeals {
		tenDeals[i] = deal(fmt.Sprintf("d%d", i+1), fmt.Sprintf("Deal #%d", i+1), float64(1000*(i+1)))
	}
	return map[string]func() (card.Card, error){
		"deal": func() (card.Card, error) {
			return card.Render(card.Input{Config: cfg, Record: deal("d1", "Q4 licences", 1234567.5), Schema: dealSchema(), Buttons: shareButtons(deal("d1", "", 0))})
		},
		"lead": func() (card.Card, error) {
			return card.Render(card.Input{Config: cfg, Record: lead("l1", "Kris Marrier"), Schema: leadSchema()})
		},
		"contact": func() (card.Card, error) {
			return card.Render(card.Input{Config: cfg, Record: contact(), Schema: contactSchema()})
		},
		"account": func() (card.Card, error) {
			return card.Render(card.Input{Config: cfg, Record: account(), Schema: accountSchema()})
		},
		"custom_module": func() (card.Card, error) {
			return card.Render(card.Input{Config: cfg, Record: property(), Schema: customSchema(), Location: paris(tb)})
		},
		"message_and_attribution": func() (card.Card, error) {
			return card.Render(card.Input{
				Config: cfg, Record: deal("d1", "Q4 licences", 50000), Schema: dealSchema(),
				Message:  "Big one landed! <!channel> & thanks *team*",
				SharedBy: "Grace Hopper",
			})
		},
		"shared_by_mention": func() (card.Card, error) {
			return card.Render(card.Input{
				Config: cfg, Record: deal("d1", "Q4 licences", 50000), Schema: dealSchema(),
				Message: "Can someone call them?", SharedBy: "Grace <Hopper>", SharedBySlackUser: "U0ACME0ALC",
			})
		},
		"list_of_10": func() (card.Card, error) {
			return card.RenderList(card.ListInput{Config: cfg, Schema: dealSchema(), Records: tenDeals, Total: 42, Buttons: shareButtons})
		},
		"truncated": func() (card.Card, error) {
			return card.Render(card.Input{
				Config: cfg, Record: overlong, Schema: dealSchema(),
				Message: long, SharedBy: long,
				Buttons: []card.Button{{Text: long, ActionID: "x", Value: "v"}},
			})
		},
	}
}

// golden is the file form of a card: the fallback text and slack-go's JSON
// for the blocks.
type golden struct {
	Text   string          `json:"text"`
	Blocks json.RawMessage `json:"blocks"`
}

func marshal(tb testing.TB, c card.Card) []byte {
	tb.Helper()
	raw, err := json.Marshal(slack.Blocks{BlockSet: c.Blocks})
	if err != nil {
		tb.Fatalf("marshalling blocks: %v", err)
	}
	// slack-go escapes &, < and > as \u0026...; decoding and re-encoding
	// without HTML escaping keeps "&amp;" readable in a golden diff.
	var blocks any
	if err := json.Unmarshal(raw, &blocks); err != nil {
		tb.Fatal(err)
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(map[string]any{"text": c.Text, "blocks": blocks}); err != nil {
		tb.Fatalf("marshalling card: %v", err)
	}
	return out.Bytes()
}

func TestGolden(t *testing.T) {
	t.Parallel()
	for name, render := range goldenCases(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, err := render()
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			got := marshal(t, c)
			path := filepath.Join("testdata", name+".golden.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("reading golden file (run with -update to create it): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the output; run `go test ./libs/card -run TestGolden -update` and review the diff\ngot:\n%s", path, got)
			}
		})
	}
}

// TestGoldenFilesWithinLimits checks what is committed, so a hand-edited or
// regenerated golden file cannot carry blocks Slack would reject.
func TestGoldenFilesWithinLimits(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/*.golden.json")
	if err != nil || len(files) != len(goldenCases(t)) {
		t.Fatalf("want %d golden files, found %d (%v)", len(goldenCases(t)), len(files), err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var g golden
		if err := json.Unmarshal(raw, &g); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if err := checkText(g.Text, 40000); err != nil {
			t.Errorf("%s: text: %v", f, err)
		}
		if err := checkBlocks(g.Blocks); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		// slack-go must read back what it wrote.
		var back slack.Blocks
		if err := json.Unmarshal(g.Blocks, &back); err != nil {
			t.Errorf("%s: slack-go cannot read the blocks: %v", f, err)
		}
	}
}

func TestTruncatedCardEndsWithEllipsis(t *testing.T) {
	t.Parallel()
	c, err := goldenCases(t)["truncated"]()
	if err != nil {
		t.Fatal(err)
	}
	header := c.Blocks[1].(*slack.HeaderBlock).Text.Text
	if n := utf8.RuneCountInString(header); n != blockkit.MaxHeaderText || !strings.HasSuffix(header, "…") {
		t.Errorf("header has %d runes, ends %q; want %d ending with …", n, header[len(header)-10:], blockkit.MaxHeaderText)
	}
	msg := c.Blocks[0].(*slack.SectionBlock).Text.Text
	if n := utf8.RuneCountInString(msg); n > blockkit.MaxSectionText || !strings.HasSuffix(msg, "…") {
		t.Errorf("message has %d runes; want ≤ %d ending with …", n, blockkit.MaxSectionText)
	}
	for _, b := range c.Blocks {
		if a, ok := b.(*slack.ActionBlock); ok {
			for _, e := range a.Elements.ElementSet {
				if e.(*slack.ButtonBlockElement).URL != "" {
					t.Error("a URL over 3000 characters must be left out, not sent")
				}
			}
		}
	}
}

func TestRenderErrors(t *testing.T) {
	t.Parallel()
	rec := deal("d1", "x", 1)
	tests := []struct {
		name string
		in   card.Input
		want error
	}{
		{"no record", card.Input{Schema: dealSchema()}, card.ErrNoRecord},
		{"other module's schema", card.Input{Record: rec, Schema: leadSchema()}, card.ErrSchemaMismatch},
		{"no action id", card.Input{Record: rec, Buttons: []card.Button{{Text: "Go"}}}, card.ErrBadButton},
		{"long action id", card.Input{Record: rec, Buttons: []card.Button{{Text: "Go", ActionID: strings.Repeat("a", 256)}}}, card.ErrBadButton},
		{"long value", card.Input{Record: rec, Buttons: []card.Button{{Text: "Go", ActionID: "a", Value: strings.Repeat("v", 2001)}}}, card.ErrBadButton},
		{"duplicate action id", card.Input{Config: cfg, Record: rec, Buttons: []card.Button{{Text: "Go", ActionID: card.OpenActionID}}}, card.ErrBadButton},
		{"no text", card.Input{Record: rec, Buttons: []card.Button{{Text: " ", ActionID: "a"}}}, card.ErrBadButton},
		{"bad style", card.Input{Record: rec, Buttons: []card.Button{{Text: "Go", ActionID: "a", Style: "pink"}}}, card.ErrBadButton},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := card.Render(tt.in); !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := card.RenderList(card.ListInput{Records: []*crmv1.Record{rec, nil}}); !errors.Is(err, card.ErrNoRecord) {
		t.Errorf("RenderList with a nil record: err = %v, want ErrNoRecord", err)
	}
}

func TestConfigurableKeyFieldsAndURL(t *testing.T) {
	t.Parallel()
	c, err := card.Render(card.Input{
		Config: card.Config{
			BaseURL:   "https://crm.example.com",
			RecordURL: func(base, module, id string) string { return base + "/#/" + module + "?id=" + id },
			KeyFields: map[string][]string{"Deals": {"Probability", "Stage"}},
		},
		Record: deal("d1", "x", 1), Schema: dealSchema(),
	})
	if err != nil {
		t.Fatal(err)
	}
	fields := c.Blocks[1].(*slack.SectionBlock).Fields
	if len(fields) != 2 || fields[0].Text != "*Probability (%)*\n75%" || fields[1].Text != "*Stage*\nNegotiation/Review" {
		t.Errorf("fields = %+v, want Probability then Stage", fields)
	}
	link := c.Blocks[3].(*slack.ActionBlock).Elements.ElementSet[0].(*slack.ButtonBlockElement)
	if link.URL != "https://crm.example.com/#/Deals?id=d1" {
		t.Errorf("URL = %q", link.URL)
	}
	if !strings.Contains(c.Text, "Probability (%): 75%") {
		t.Errorf("fallback text misses the key fields: %q", c.Text)
	}
}

func TestRenderListTitleAndBlockBudget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		records, total int
		want           string
	}{
		{1, 1, "1 of 1 lead"},
		{3, 0, "3 of 3 leads"},
		{25, 120, "10 of 120 leads"},
		{0, 0, "0 of 0 leads"},
	}
	for _, tt := range tests {
		recs := make([]*crmv1.Record, tt.records)
		for i := range recs {
			recs[i] = lead(fmt.Sprint(i), strings.Repeat("n", 5000))
		}
		c, err := card.RenderList(card.ListInput{Config: cfg, Schema: leadSchema(), Records: recs, Total: tt.total, Buttons: shareButtons})
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Blocks[0].(*slack.HeaderBlock).Text.Text; got != tt.want {
			t.Errorf("title = %q, want %q", got, tt.want)
		}
		raw, _ := json.Marshal(slack.Blocks{BlockSet: c.Blocks})
		if err := checkBlocks(raw); err != nil {
			t.Errorf("%s: %v", tt.want, err)
		}
	}
}

func TestValue(t *testing.T) {
	t.Parallel()
	loc := paris(t)
	at := time.Date(2026, 1, 15, 23, 30, 0, 0, time.UTC)
	tests := []struct {
		name string
		v    *crmv1.FieldValue
		meta *crmv1.FieldMeta
		loc  *time.Location
		want string
	}{
		{"currency", num(1234567.891), currency("A", "A", "EUR"), nil, "EUR 1,234,567.89"},
		{"negative currency", num(-999.5), currency("A", "A", "USD"), nil, "USD -999.50"},
		{"currency without code", num(1000), currency("A", "A", ""), nil, "1,000.00"},
		{"percent", num(12.5), fm("P", "P", tPercent), nil, "12.5%"},
		{"integer", num(1234567), fm("I", "I", tInt), nil, "1,234,567"},
		{"decimal", num(-1234.25), fm("D", "D", tDecimal), nil, "-1,234.25"},
		{"number without schema", num(100), nil, nil, "100"},
		{"NaN is empty", &crmv1.FieldValue{Kind: &crmv1.FieldValue_Number{Number: nanValue()}}, nil, nil, ""},
		{"yes", boolean(true), nil, nil, "Yes"},
		{"no", boolean(false), nil, nil, "No"},
		{"ISO date", date("2026-11-25"), nil, nil, "Nov 25, 2026"},
		{"other date", date("25/11/2026"), nil, nil, "25/11/2026"},
		{"datetime UTC", datetime(at), nil, nil, "Jan 15, 2026 23:30 UTC"},
		{"datetime in viewer's zone", datetime(at), nil, loc, "Jan 16, 2026 00:30 CET"},
		{"multi", multi("a", " ", "b"), nil, nil, "a, b"},
		{"lookup by name", lookup("Accounts", "1", "Zylker"), nil, nil, "Zylker"},
		{"lookup without name", lookup("Accounts", "1", ""), nil, nil, "1"},
		{"empty text", text("  "), nil, nil, ""},
		{"unset", &crmv1.FieldValue{}, nil, nil, ""},
		{"nil", nil, nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := card.Value(tt.v, tt.meta, tt.loc); got != tt.want {
				t.Errorf("Value = %q, want %q", got, tt.want)
			}
		})
	}
}

func nanValue() float64 {
	zero := 0.0
	return zero / zero
}

func BenchmarkRenderCard(b *testing.B) {
	in := card.Input{Config: cfg, Record: deal("d1", "Q4 licences", 1234567.5), Schema: dealSchema(), Message: "Look at this", SharedBy: "Ada", Buttons: shareButtons(deal("d1", "", 0))}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := card.Render(in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cards/s")
}

// TestMentionOnlyForSlackUserIDs: the mention goes into mrkdwn unescaped,
// so only a Slack user id's shape is accepted.
func TestMentionOnlyForSlackUserIDs(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]string{
		"U0ACME0ALC": "<@U0ACME0ALC>", "W0ENTERPRS": "<@W0ENTERPRS>",
		"": "", "u0acme": "", "U0> <!channel": "", "C0ACMEGNRL": "", "U0ACME0ALC|x": "",
	} {
		if got := card.Mention(id); got != want {
			t.Errorf("Mention(%q) = %q, want %q", id, got, want)
		}
	}
	c, err := card.Render(card.Input{Config: cfg, Record: deal("d1", "Q4", 1), Schema: dealSchema(), SharedBy: "Grace", SharedBySlackUser: "<!channel>"})
	if err != nil {
		t.Fatal(err)
	}
	if raw := string(marshal(t, c)); strings.Contains(raw, "<!channel>") || !strings.Contains(raw, "Shared by Grace") {
		t.Errorf("a bad Slack user id must fall back to the name:\n%s", raw)
	}
}
