package blockcheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/crmslack/crmslack/libs/slackstandin"
)

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type obj = map[string]any

func plain(s string) obj   { return obj{"type": "plain_text", "text": s} }
func mrkdwn(s string) obj  { return obj{"type": "mrkdwn", "text": s} }
func section(s string) obj { return obj{"type": "section", "text": mrkdwn(s)} }

func button(text, value, actionID string) obj {
	return obj{"type": "button", "text": plain(text), "value": value, "action_id": actionID}
}

func blocksOf(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = obj{"type": "divider"}
	}
	return out
}

func fieldsOf(n, size int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = mrkdwn(strings.Repeat("f", size))
	}
	return out
}

// TestLimits checks each of Slack's limits at the limit (accepted) and one
// over (refused), and that the stand-in, which mirrors Slack, agrees.
func TestLimits(t *testing.T) {
	t.Parallel()
	x := strings.Repeat
	cases := []struct {
		name   string
		blocks []any
		ok     bool
	}{
		{"50 blocks", append(blocksOf(49), section("s")), true},
		{"51 blocks", append(blocksOf(50), section("s")), false},
		{"section text 3000", []any{section(x("a", 3000))}, true},
		{"section text 3001", []any{section(x("a", 3001))}, false},
		{"section text counts characters not bytes", []any{section(x("é", 3000))}, true},
		{"10 fields of 2000", []any{obj{"type": "section", "fields": fieldsOf(10, 2000)}}, true},
		{"11 fields", []any{obj{"type": "section", "fields": fieldsOf(11, 1)}}, false},
		{"field of 2001", []any{obj{"type": "section", "fields": fieldsOf(1, 2001)}}, false},
		{"header 150", []any{obj{"type": "header", "text": plain(x("h", 150))}}, true},
		{"header 151", []any{obj{"type": "header", "text": plain(x("h", 151))}}, false},
		{"header must be plain_text", []any{obj{"type": "header", "text": mrkdwn("h")}}, false},
		{"button text 75", []any{obj{"type": "actions", "elements": []any{button(x("b", 75), "v", "a")}}}, true},
		{"button text 76", []any{obj{"type": "actions", "elements": []any{button(x("b", 76), "v", "a")}}}, false},
		{"button value 2000", []any{obj{"type": "actions", "elements": []any{button("b", x("v", 2000), "a")}}}, true},
		{"button value 2001", []any{obj{"type": "actions", "elements": []any{button("b", x("v", 2001), "a")}}}, false},
		{"action_id 255", []any{obj{"type": "actions", "elements": []any{button("b", "v", x("a", 255))}}}, true},
		{"action_id 256", []any{obj{"type": "actions", "elements": []any{button("b", "v", x("a", 256))}}}, false},
		{"duplicate action_id in a block", []any{obj{"type": "actions", "elements": []any{button("b", "v", "a"), button("c", "v", "a")}}}, false},
		{"block_id 255", []any{obj{"type": "divider", "block_id": x("i", 255)}, section("s")}, true},
		{"block_id 256", []any{obj{"type": "divider", "block_id": x("i", 256)}, section("s")}, false},
		{"duplicate block_id", []any{obj{"type": "divider", "block_id": "b"}, obj{"type": "divider", "block_id": "b"}, section("s")}, false},
		{"25 actions elements", []any{obj{"type": "actions", "elements": buttons(25)}}, true},
		{"26 actions elements", []any{obj{"type": "actions", "elements": buttons(26)}}, false},
		{"10 context elements", []any{obj{"type": "context", "elements": fieldsOf(10, 5)}}, true},
		{"11 context elements", []any{obj{"type": "context", "elements": fieldsOf(11, 5)}}, false},
		{"section accessory button", []any{obj{"type": "section", "text": mrkdwn("s"), "accessory": button("b", "v", "a")}}, true},
		{"section without text or fields", []any{obj{"type": "section"}}, false},
		{"unknown block type", []any{obj{"type": "carousel"}}, false},
		{"block without type", []any{obj{"text": "x"}}, false},
		{"image with url and alt", []any{obj{"type": "image", "image_url": "https://x/y.png", "alt_text": "chart"}}, true},
		{"image without alt text", []any{obj{"type": "image", "image_url": "https://x/y.png"}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw := mustJSON(t, tc.blocks)
			_, err := Check("fallback", raw)
			if (err == nil) != tc.ok {
				t.Fatalf("Check = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			if tc.ok {
				if serr := slackstandin.ValidateBlocks(raw); serr != nil {
					t.Fatalf("accepted, but Slack (the stand-in) refuses it: %v", serr)
				}
			}
		})
	}
}

func buttons(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = button("b", "v", fmt.Sprintf("a%d", i))
	}
	return out
}

func TestFallbackText(t *testing.T) {
	t.Parallel()
	header := obj{"type": "header", "text": plain("Deal won")}
	for _, tc := range []struct {
		name   string
		text   string
		blocks []any
		want   string
		ok     bool
	}{
		{"given text is kept", "Acme signed", []any{header}, "Acme signed", true},
		{"derived from header and section", "", []any{header, section("Acme — $50k")}, "Deal won\nAcme — $50k", true},
		{"derived from fields", "", []any{obj{"type": "section", "fields": []any{mrkdwn("a"), mrkdwn("b")}}}, "a\nb", true},
		{"derived from context", "", []any{obj{"type": "context", "elements": []any{mrkdwn("by Alice")}}}, "by Alice", true},
		{"nothing to derive from", "", []any{obj{"type": "divider"}}, "", false},
		{"no text and no blocks", "   ", nil, "", false},
		{"text alone", "hello", nil, "hello", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var raw []byte
			if tc.blocks != nil {
				raw = mustJSON(t, tc.blocks)
			}
			m, err := Check(tc.text, raw)
			if (err == nil) != tc.ok {
				t.Fatalf("Check = %v, want ok=%v", err, tc.ok)
			}
			if m.Text != tc.want {
				t.Fatalf("text = %q, want %q", m.Text, tc.want)
			}
		})
	}
}

func TestTextLimitAndShape(t *testing.T) {
	t.Parallel()
	if _, err := Check(strings.Repeat("a", MaxText), nil); err != nil {
		t.Fatalf("text of %d: %v", MaxText, err)
	}
	if _, err := Check(strings.Repeat("a", MaxText+1), nil); err == nil {
		t.Fatalf("text of %d accepted", MaxText+1)
	}
	for _, raw := range []string{`{"type":"divider"}`, `[`, `[] []`, `"x"`} {
		if _, err := Check("t", []byte(raw)); err == nil {
			t.Errorf("blocks %s accepted", raw)
		}
	}
	m, err := Check("t", []byte(" [ {\"type\" : \"divider\"} ] "))
	if err != nil || string(m.Blocks) != `[{"type":"divider"}]` {
		t.Fatalf("Check = %s, %v; want compacted blocks", m.Blocks, err)
	}
	if m, err := Check("t", []byte("[]")); err != nil || m.Blocks != nil {
		t.Fatalf("empty array: %s, %v; want no blocks", m.Blocks, err)
	}
}

func TestErrorListsEveryProblem(t *testing.T) {
	t.Parallel()
	raw := mustJSON(t, append(blocksOf(51), section(strings.Repeat("a", 3001))))
	_, err := Check("t", raw)
	var e *Error
	if !errors.As(err, &e) || len(e.Problems) != 2 {
		t.Fatalf("err = %v, want two problems", err)
	}
	if !strings.Contains(err.Error(), "/blocks/51/text/text") {
		t.Fatalf("error %q does not point at the long text", err)
	}
}

// FuzzCheck feeds arbitrary text and blocks. Check must never panic, and
// whatever it accepts must be something Slack (the stand-in, which mirrors
// Slack's validation) accepts too, with a non-empty fallback text within
// Slack's limit.
func FuzzCheck(f *testing.F) {
	f.Add("hi", `[{"type":"section","text":{"type":"mrkdwn","text":"x"}}]`)
	f.Add("", `[{"type":"header","text":{"type":"plain_text","text":"Deal"}},{"type":"divider"}]`)
	f.Add("t", `[{"type":"actions","elements":[{"type":"button","text":{"type":"plain_text","text":"Open"},"action_id":"a","value":"v","url":"https://x"}]}]`)
	f.Add("t", `[{"type":"section","fields":[{"type":"mrkdwn","text":"a"}],"accessory":{"type":"static_select","action_id":"s","options":[{"text":{"type":"plain_text","text":"o"},"value":"1"}]}}]`)
	f.Add("t", `[{"type":"context","elements":[{"type":"image","image_url":"https://x","alt_text":"a"},{"type":"mrkdwn","text":"m"}]}]`)
	f.Add("", `[{"type":"markdown","text":"**hi**"}]`)
	f.Add("t", `[{"type":"image","image_url":"https://x","alt_text":"a","title":{"type":"plain_text","text":"t"}}]`)
	f.Add("", `[]`)
	f.Add("t", `[{"type":"section","text":{"type":"mrkdwn","text":"x"},"block_id":"b"},{"type":"divider","block_id":"b"}]`)
	f.Fuzz(func(t *testing.T, text, blocks string) {
		m, err := Check(text, []byte(blocks))
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if strings.TrimSpace(m.Text) == "" {
			t.Fatalf("accepted with an empty fallback (text %q, blocks %s)", text, blocks)
		}
		if utf8.RuneCountInString(m.Text) > MaxText {
			t.Fatalf("accepted a fallback of %d characters", utf8.RuneCountInString(m.Text))
		}
		if m.Blocks != nil {
			if serr := slackstandin.ValidateBlocks(m.Blocks); serr != nil {
				t.Fatalf("accepted blocks Slack refuses: %v\nblocks: %s", serr, m.Blocks)
			}
		}
	})
}
