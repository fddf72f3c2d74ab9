package blockcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/crmslack/crmslack/libs/blockkit"
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

func blocksOf(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = obj{"type": "divider"}
	}
	return out
}

// TestBlocksCheckedByBlockkit: Check refuses what blockkit refuses, with
// blockkit's messages (its own tests cover each of Slack's limits).
func TestBlocksCheckedByBlockkit(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		string(mustJSON(t, []any{section(strings.Repeat("a", blockkit.MaxSectionText+1))})),
		string(mustJSON(t, blocksOf(blockkit.MaxBlocks+1))),
		string(mustJSON(t, []any{obj{"type": "header", "text": mrkdwn("h")}})),
		`[{"type":"divider"`,
		`{"type":"divider"}`,
	} {
		var be *blockkit.Error
		if !errors.As(blockkit.Validate([]byte(raw)), &be) {
			t.Fatalf("blockkit accepts %s", raw)
		}
		_, err := Check("fallback", []byte(raw))
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, ErrInvalid) {
			t.Fatalf("Check(%s) = %v, want an *Error wrapping ErrInvalid", raw, err)
		}
		if !slices.Equal(e.Problems, be.Messages) {
			t.Errorf("Check(%s) problems %q, want blockkit's %q", raw, e.Problems, be.Messages)
		}
	}
	if _, err := Check("fallback", mustJSON(t, append(blocksOf(blockkit.MaxBlocks-1), section(strings.Repeat("a", blockkit.MaxSectionText))))); err != nil {
		t.Fatalf("blocks at the limits refused: %v", err)
	}
}

// TestOnlySupportedBlockTypes: block types blockkit accepts but crmslack
// never builds are refused by delivery.
func TestOnlySupportedBlockTypes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		block obj
		ok    bool
	}{
		{"section", section("s"), true},
		{"header", obj{"type": "header", "text": plain("h")}, true},
		{"divider", obj{"type": "divider"}, true},
		{"actions", obj{"type": "actions", "elements": []any{obj{"type": "button", "text": plain("b"), "action_id": "a"}}}, true},
		{"context", obj{"type": "context", "elements": []any{mrkdwn("c")}}, true},
		{"image", obj{"type": "image", "image_url": "https://x/y.png", "alt_text": "a"}, true},
		{"markdown", obj{"type": "markdown", "text": "**m**"}, true},
		{"rich_text", obj{"type": "rich_text", "elements": []any{}}, false},
		{"input", obj{"type": "input", "label": plain("l"), "element": obj{"type": "plain_text_input"}}, false},
		{"file", obj{"type": "file", "external_id": "x", "source": "remote"}, false},
		{"video", obj{"type": "video", "alt_text": "a", "video_url": "https://x/v", "thumbnail_url": "https://x/t", "title": plain("t")}, false},
		{"table", obj{"type": "table", "rows": []any{[]any{}}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw := mustJSON(t, []any{section("s"), tc.block})
			if err := blockkit.Validate(raw); err != nil {
				t.Fatalf("blockkit refuses the case itself: %v", err)
			}
			_, err := Check("fallback", raw)
			if (err == nil) != tc.ok {
				t.Fatalf("Check = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "/blocks/1/type")) {
				t.Fatalf("error %v does not wrap ErrInvalid or point at /blocks/1/type", err)
			}
		})
	}
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
	if _, err := Check(strings.Repeat("a", blockkit.MaxMessageText), nil); err != nil {
		t.Fatalf("text of %d: %v", blockkit.MaxMessageText, err)
	}
	if _, err := Check(strings.Repeat("a", blockkit.MaxMessageText+1), nil); err == nil {
		t.Fatalf("text of %d accepted", blockkit.MaxMessageText+1)
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

// FuzzCheck feeds arbitrary text and blocks. Check must never panic, must
// refuse what blockkit refuses, and whatever it accepts must carry blocks
// blockkit accepts, compacted and of supported types only, with a non-empty
// fallback text within Slack's limit.
func FuzzCheck(f *testing.F) {
	f.Add("hi", `[{"type":"section","text":{"type":"mrkdwn","text":"x"}}]`)
	f.Add("", `[{"type":"header","text":{"type":"plain_text","text":"Deal"}},{"type":"divider"}]`)
	f.Add("t", `[{"type":"actions","elements":[{"type":"button","text":{"type":"plain_text","text":"Open"},"action_id":"a","value":"v","url":"https://x"}]}]`)
	f.Add("t", `[{"type":"section","fields":[{"type":"mrkdwn","text":"a"}],"accessory":{"type":"static_select","action_id":"s","options":[{"text":{"type":"plain_text","text":"o"},"value":"1"}]}}]`)
	f.Add("t", `[{"type":"context","elements":[{"type":"image","image_url":"https://x","alt_text":"a"},{"type":"mrkdwn","text":"m"}]}]`)
	f.Add("", `[{"type":"markdown","text":"**hi**"}]`)
	f.Add("t", `[{"type":"image","image_url":"https://x","alt_text":"a","title":{"type":"plain_text","text":"t"}}]`)
	f.Add("", `[]`)
	f.Add("", `  `)
	f.Add("t", `[{"type":"rich_text","elements":[]}]`)
	f.Add("t", `[{"type":"section","text":{"type":"mrkdwn","text":"x"},"block_id":"b"},{"type":"divider","block_id":"b"}]`)
	f.Fuzz(func(t *testing.T, text, blocks string) {
		m, err := Check(text, []byte(blocks))
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if strings.TrimSpace(blocks) != "" {
			if berr := blockkit.Validate([]byte(blocks)); berr != nil {
				t.Fatalf("accepted blocks blockkit refuses: %v\nblocks: %s", berr, blocks)
			}
		}
		if strings.TrimSpace(m.Text) == "" {
			t.Fatalf("accepted with an empty fallback (text %q, blocks %s)", text, blocks)
		}
		if utf8.RuneCountInString(m.Text) > blockkit.MaxMessageText {
			t.Fatalf("accepted a fallback of %d characters", utf8.RuneCountInString(m.Text))
		}
		if m.Blocks == nil {
			return
		}
		var list []map[string]any
		if err := json.Unmarshal(m.Blocks, &list); err != nil || len(list) == 0 {
			t.Fatalf("accepted blocks %s: %v", m.Blocks, err)
		}
		for _, b := range list {
			if typ, _ := b["type"].(string); !supported[typ] {
				t.Fatalf("accepted a %q block", typ)
			}
		}
		var again bytes.Buffer
		if err := json.Compact(&again, m.Blocks); err != nil || again.String() != string(m.Blocks) {
			t.Fatalf("blocks not compacted: %s", m.Blocks)
		}
	})
}
