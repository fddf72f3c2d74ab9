package render_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/crmslack/crmslack/libs/card"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	"github.com/crmslack/crmslack/services/query/internal/filter"
	"github.com/crmslack/crmslack/services/query/internal/projection"
	"github.com/crmslack/crmslack/services/query/internal/render"
	"github.com/crmslack/crmslack/services/query/internal/seedset"
	"github.com/crmslack/crmslack/services/query/internal/slash"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the current output")

// search runs text over the seed data the way the service does.
func search(tb testing.TB, text string) (*crmv1.ModuleSchema, projection.Result, *filter.Query) {
	tb.Helper()
	s := projection.New()
	schemas := seedset.Schemas()
	for module, recs := range seedset.Records() {
		for _, r := range recs {
			if _, err := s.ApplyUpserted(&crmv1.RecordUpserted{Envelope: &commonv1.Envelope{OrgId: seedset.Org}, Record: r, Schema: schemas[module]}); err != nil {
				tb.Fatal(err)
			}
		}
	}
	cmd, err := slash.Parse(text)
	if err != nil {
		tb.Fatal(err)
	}
	schema, _ := s.Schema(seedset.Org, cmd.Module)
	q, err := filter.Bind(cmd, schema)
	if err != nil {
		tb.Fatal(err)
	}
	res, err := s.Search(seedset.Org, q, card.MaxListCards)
	if err != nil {
		tb.Fatal(err)
	}
	return schema, res, q
}

func cases(tb testing.TB) map[string]func() (render.Answer, error) {
	r := render.Renderer{Card: card.Config{BaseURL: "https://crm.example.com/crm/org-seed/tab"}, Buttons: testButtons(tb)}
	return map[string]func() (render.Answer, error){
		"list": func() (render.Answer, error) {
			schema, res, q := search(tb, "leads")
			return r.Results(to, schema, res.Records, res.Total, q.Describe())
		},
		"list_criteria": func() (render.Answer, error) {
			schema, res, q := search(tb, "leads [last name]=[watson] [lead source]=[tradeshow]")
			return r.Results(to, schema, res.Records, res.Total, q.Describe())
		},
		"no_match": func() (render.Answer, error) {
			schema, _, q := search(tb, "leads [last name] starts with [zzz]")
			return render.NoMatch(schema, "Leads", q.Describe()), nil
		},
		"refusal": func() (render.Answer, error) {
			cmd, _ := slash.Parse("leads [last nmae] is [watson]")
			_, err := filter.Bind(cmd, seedset.Schemas()["Leads"])
			return render.Refusal(err.Error(), "leads [last nmae] is [watson]", cmd.Describe()), nil
		},
		"refusal_syntax": func() (render.Answer, error) {
			_, err := slash.Parse("leads [last name] is [watson")
			return render.Refusal(err.Error(), "leads [last name] is [watson", ""), nil
		},
		"help":           func() (render.Answer, error) { return render.Help(), nil },
		"not_a_crm_user": func() (render.Answer, error) { return render.NotACRMUser(), nil },
	}
}

// marshal is the file form of an answer: the fallback text and the blocks,
// indented, without HTML escaping so "&amp;" reads as written.
func marshal(tb testing.TB, a render.Answer) []byte {
	tb.Helper()
	raw, err := a.JSON()
	if err != nil {
		tb.Fatal(err)
	}
	var blocks any
	if err := json.Unmarshal(raw, &blocks); err != nil {
		tb.Fatal(err)
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(map[string]any{"text": a.Text, "blocks": blocks}); err != nil {
		tb.Fatal(err)
	}
	return out.Bytes()
}

func TestGolden(t *testing.T) {
	t.Parallel()
	for name, build := range cases(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a, err := build()
			if err != nil {
				t.Fatal(err)
			}
			got := marshal(t, a)
			path := filepath.Join("testdata", name+".golden.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("reading golden file (run with -update to create it): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the output; run `go test ./services/query/internal/render -run TestGolden -update` and review the diff\ngot:\n%s", path, got)
			}
		})
	}
}

// TestWithinSlackLimits checks every golden answer against the limits
// Slack enforces, so a regenerated golden cannot carry a message Slack
// would refuse.
func TestWithinSlackLimits(t *testing.T) {
	t.Parallel()
	for name, build := range cases(t) {
		a, err := build()
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := a.JSON()
		var blocks []map[string]any
		if err := json.Unmarshal(raw, &blocks); err != nil {
			t.Fatal(err)
		}
		if len(blocks) == 0 || len(blocks) > 50 || strings.TrimSpace(a.Text) == "" {
			t.Errorf("%s: %d blocks, text %q", name, len(blocks), a.Text)
		}
		for i, b := range blocks {
			if txt, ok := b["text"].(map[string]any); ok {
				limit := 3000
				if b["type"] == "header" {
					limit = 150
				}
				if n := utf8.RuneCountInString(txt["text"].(string)); n > limit {
					t.Errorf("%s: block %d (%s) text is %d characters", name, i, b["type"], n)
				}
			}
		}
	}
}

func TestResultsCarryShareButtons(t *testing.T) {
	t.Parallel()
	schema, res, q := search(t, "leads [last name]=[watson]")
	buttons := testButtons(t)
	a, err := render.Renderer{Buttons: buttons}.Results(to, schema, res.Records, res.Total, q.Describe())
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := a.JSON()
	var got []string
	for _, b := range a.Blocks {
		if ab, ok := b.(*slack.ActionBlock); ok {
			for _, e := range ab.Elements.ElementSet {
				if be, ok := e.(*slack.ButtonBlockElement); ok && be.ActionID == card.ShareActionID {
					ref, err := buttons.Open(be.Value, to.Team, to.Channel, to.User)
					if err != nil {
						t.Fatalf("share button %q: %v", be.Value, err)
					}
					got = append(got, ref.ID)
				}
			}
		}
	}
	if strings.Join(got, ",") != "lead-07,lead-02,lead-01" {
		t.Errorf("share buttons for %v", got)
	}
	if !strings.Contains(string(raw), card.ShareActionID) || !strings.Contains(string(raw), "Open in CRM") {
		t.Error("share or open button missing")
	}
}

// to is who the test results are shown to.
var to = card.Grant{Ref: card.Ref{Org: seedset.Org}, Team: "T0ACME0001", Channel: "C0ACMESALE", User: "U0ACME0ALC"}

// testButtons signs with a fixed key and clock, so golden files hold.
func testButtons(tb testing.TB) *card.Buttons {
	tb.Helper()
	b, err := card.NewButtons(func() time.Time { return time.Unix(1_800_000_000, 0) }, []byte(strings.Repeat("k", 32)))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestUserTextIsEscaped(t *testing.T) {
	t.Parallel()
	a := render.Refusal("bad <thing> & more", "leads <@U123> `x`", "Leads where (Company is a&b)")
	raw, _ := a.JSON()
	s := string(raw)
	for _, bad := range []string{"<@U123>", "<thing>", "a&b"} {
		if strings.Contains(strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(s), bad) {
			t.Errorf("unescaped %q in %s", bad, s)
		}
	}
}
