package blockkit_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/slack-go/slack"

	"github.com/crmslack/crmslack/libs/blockkit"
)

// blocksJSON encodes blocks for a test case.
func blocksJSON(tb testing.TB, blocks ...any) string {
	tb.Helper()
	raw, err := json.Marshal(blocks)
	if err != nil {
		tb.Fatal(err)
	}
	return string(raw)
}

func plain(s string) map[string]any  { return map[string]any{"type": "plain_text", "text": s} }
func mrkdwn(s string) map[string]any { return map[string]any{"type": "mrkdwn", "text": s} }

func section(text string) map[string]any {
	return map[string]any{"type": "section", "text": mrkdwn(text)}
}

func button(mod func(b map[string]any)) map[string]any {
	b := map[string]any{"type": "button", "text": plain("Open"), "action_id": "open", "value": "v"}
	if mod != nil {
		mod(b)
	}
	return b
}

func actions(elems ...any) map[string]any {
	return map[string]any{"type": "actions", "elements": elems}
}

func repeat(n int, f func(i int) any) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

// TestValidate checks each limit at the limit (accepted) and one over
// (refused with Slack's code and message).
func TestValidate(t *testing.T) {
	t.Parallel()
	x := strings.Repeat
	tests := []struct {
		name     string
		blocks   string
		wantCode string // "" means accepted
		wantMsg  string
	}{
		{"50 blocks", blocksJSON(t, repeat(50, func(int) any { return map[string]any{"type": "divider"} })...), "", ""},
		{"51 blocks", blocksJSON(t, repeat(51, func(int) any { return map[string]any{"type": "divider"} })...), "invalid_blocks", "[ERROR] no more than 50 items allowed [json-pointer:/blocks]"},
		{"section text 3000", blocksJSON(t, section(x("a", 3000))), "", ""},
		{"section text 3001", blocksJSON(t, section(x("a", 3001))), "invalid_blocks", "[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]"},
		{"section text counts characters not bytes", blocksJSON(t, section(x("é", 3000))), "", ""},
		{"section empty text", blocksJSON(t, section("")), "invalid_blocks", "[ERROR] must be more than 0 characters [json-pointer:/blocks/0/text/text]"},
		{"section without text or fields", blocksJSON(t, map[string]any{"type": "section"}), "invalid_blocks", "[ERROR] must provide either text or fields [json-pointer:/blocks/0]"},
		{"10 fields", blocksJSON(t, map[string]any{"type": "section", "fields": repeat(10, func(int) any { return mrkdwn("f") })}), "", ""},
		{"11 fields", blocksJSON(t, map[string]any{"type": "section", "fields": repeat(11, func(int) any { return mrkdwn("f") })}), "invalid_blocks", "[ERROR] no more than 10 items allowed [json-pointer:/blocks/0/fields]"},
		{"field 2000", blocksJSON(t, map[string]any{"type": "section", "fields": []any{mrkdwn(x("f", 2000))}}), "", ""},
		{"field 2001", blocksJSON(t, map[string]any{"type": "section", "fields": []any{mrkdwn(x("f", 2001))}}), "invalid_blocks", "[ERROR] must be less than 2001 characters [json-pointer:/blocks/0/fields/0/text]"},
		{"header 150", blocksJSON(t, map[string]any{"type": "header", "text": plain(x("h", 150))}), "", ""},
		{"header 151", blocksJSON(t, map[string]any{"type": "header", "text": plain(x("h", 151))}), "invalid_blocks", "[ERROR] must be less than 151 characters [json-pointer:/blocks/0/text/text]"},
		{"header in mrkdwn", blocksJSON(t, map[string]any{"type": "header", "text": mrkdwn("h")}), "invalid_blocks", "[ERROR] must be a valid enum value: plain_text [json-pointer:/blocks/0/text/type]"},
		{"button text 75", blocksJSON(t, actions(button(func(b map[string]any) { b["text"] = plain(x("b", 75)) }))), "", ""},
		{"button text 76", blocksJSON(t, actions(button(func(b map[string]any) { b["text"] = plain(x("b", 76)) }))), "invalid_blocks", "[ERROR] must be less than 76 characters [json-pointer:/blocks/0/elements/0/text/text]"},
		{"button value 2000", blocksJSON(t, actions(button(func(b map[string]any) { b["value"] = x("v", 2000) }))), "", ""},
		{"button value 2001", blocksJSON(t, actions(button(func(b map[string]any) { b["value"] = x("v", 2001) }))), "invalid_blocks", "[ERROR] must be less than 2001 characters [json-pointer:/blocks/0/elements/0/value]"},
		{"action_id 255", blocksJSON(t, actions(button(func(b map[string]any) { b["action_id"] = x("a", 255) }))), "", ""},
		{"action_id 256", blocksJSON(t, actions(button(func(b map[string]any) { b["action_id"] = x("a", 256) }))), "invalid_blocks", "[ERROR] must be less than 256 characters [json-pointer:/blocks/0/elements/0/action_id]"},
		{"button style", blocksJSON(t, actions(button(func(b map[string]any) { b["style"] = "loud" }))), "invalid_blocks", "[ERROR] must be a valid enum value: primary, danger [json-pointer:/blocks/0/elements/0/style]"},
		{"button without text", blocksJSON(t, actions(button(func(b map[string]any) { delete(b, "text") }))), "invalid_blocks", "[ERROR] missing required field: text [json-pointer:/blocks/0/elements/0]"},
		{"block_id 255", blocksJSON(t, map[string]any{"type": "divider", "block_id": x("b", 255)}), "", ""},
		{"block_id 256", blocksJSON(t, map[string]any{"type": "divider", "block_id": x("b", 256)}), "invalid_blocks", "[ERROR] must be less than 256 characters [json-pointer:/blocks/0/block_id]"},
		{"duplicate block_id", blocksJSON(t, map[string]any{"type": "divider", "block_id": "d"}, map[string]any{"type": "divider", "block_id": "d"}), "invalid_blocks", "[ERROR] duplicate block_id: d [json-pointer:/blocks/1/block_id]"},
		{"duplicate action_id in a block", blocksJSON(t, actions(button(nil), button(nil))), "invalid_blocks", "[ERROR] duplicate action_id: open [json-pointer:/blocks/0/elements/1/action_id]"},
		{"same action_id in two blocks", blocksJSON(t, actions(button(nil)), actions(button(nil))), "", ""},
		{"25 actions", blocksJSON(t, actions(repeat(25, func(i int) any { return button(func(b map[string]any) { b["action_id"] = fmt.Sprint(i) }) })...)), "", ""},
		{"26 actions", blocksJSON(t, actions(repeat(26, func(i int) any { return button(func(b map[string]any) { b["action_id"] = fmt.Sprint(i) }) })...)), "invalid_blocks", "[ERROR] no more than 25 items allowed [json-pointer:/blocks/0/elements]"},
		{"image in actions", blocksJSON(t, actions(map[string]any{"type": "image", "image_url": "https://x.example/a.png", "alt_text": "a"})), "invalid_blocks", "[ERROR] failed to match all allowed schemas [json-pointer:/blocks/0/elements/0]"},
		{"10 context elements", blocksJSON(t, map[string]any{"type": "context", "elements": repeat(10, func(int) any { return mrkdwn("c") })}), "", ""},
		{"11 context elements", blocksJSON(t, map[string]any{"type": "context", "elements": repeat(11, func(int) any { return mrkdwn("c") })}), "invalid_blocks", "[ERROR] no more than 10 items allowed [json-pointer:/blocks/0/elements]"},
		{"image without alt_text", blocksJSON(t, map[string]any{"type": "image", "image_url": "https://x.example/a.png"}), "invalid_blocks", "[ERROR] missing required field: alt_text [json-pointer:/blocks/0]"},
		{"overflow 5 options", blocksJSON(t, actions(map[string]any{"type": "overflow", "action_id": "o", "options": repeat(5, func(i int) any { return map[string]any{"text": plain("o"), "value": fmt.Sprint(i)} })})), "", ""},
		{"overflow 6 options", blocksJSON(t, actions(map[string]any{"type": "overflow", "action_id": "o", "options": repeat(6, func(i int) any { return map[string]any{"text": plain("o"), "value": fmt.Sprint(i)} })})), "invalid_blocks", "[ERROR] no more than 5 items allowed [json-pointer:/blocks/0/elements/0/options]"},
		{"option value 151", blocksJSON(t, actions(map[string]any{"type": "static_select", "action_id": "s", "options": []any{map[string]any{"text": plain("o"), "value": x("v", 151)}}})), "invalid_blocks", "[ERROR] must be less than 151 characters [json-pointer:/blocks/0/elements/0/options/0/value]"},
		{"unknown block type", blocksJSON(t, map[string]any{"type": "carousel_of_doom"}), "invalid_blocks", "[ERROR] unsupported type: carousel_of_doom [json-pointer:/blocks/0/type]"},
		{"block without type", blocksJSON(t, map[string]any{"text": mrkdwn("x")}), "invalid_blocks", "[ERROR] missing required field: type [json-pointer:/blocks/0]"},
		{"block not an object", `["divider"]`, "invalid_blocks", "[ERROR] must provide an object [json-pointer:/blocks/0]"},
		{"text object of unknown type", blocksJSON(t, map[string]any{"type": "section", "text": map[string]any{"type": "html", "text": "<b>x</b>"}}), "invalid_blocks", "[ERROR] failed to match all allowed schemas [json-pointer:/blocks/0/text]"},
		{"malformed JSON", `[{"type":"divider"`, "invalid_blocks_format", "[ERROR] blocks must be a JSON array [json-pointer:/blocks]"},
		{"trailing data", `[] []`, "invalid_blocks_format", "[ERROR] blocks must be a JSON array [json-pointer:/blocks]"},
		{"object instead of array", `{"type":"divider"}`, "invalid_blocks_format", "[ERROR] must provide an array [json-pointer:/blocks]"},
		// From delivery's former blockcheck tests.
		{"50 blocks ending in a section", blocksJSON(t, append(repeat(49, func(int) any { return map[string]any{"type": "divider"} }), section("s"))...), "", ""},
		{"10 fields of 2000", blocksJSON(t, map[string]any{"type": "section", "fields": repeat(10, func(int) any { return mrkdwn(x("f", 2000)) })}), "", ""},
		{"section accessory button", blocksJSON(t, map[string]any{"type": "section", "text": mrkdwn("s"), "accessory": button(nil)}), "", ""},
		{"image with url and alt", blocksJSON(t, map[string]any{"type": "image", "image_url": "https://x/y.png", "alt_text": "chart"}), "", ""},
		{"10 context elements of 3000", blocksJSON(t, map[string]any{"type": "context", "elements": repeat(10, func(int) any { return mrkdwn(x("c", 3000)) })}), "", ""},
		{"context element 3001", blocksJSON(t, map[string]any{"type": "context", "elements": []any{mrkdwn(x("c", 3001))}}), "invalid_blocks", "[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/elements/0/text]"},
		// Limits declared here and checked nowhere else.
		{"button url 3000", blocksJSON(t, actions(button(func(b map[string]any) { b["url"] = "https://x.example/" + x("u", 3000-18) }))), "", ""},
		{"button url 3001", blocksJSON(t, actions(button(func(b map[string]any) { b["url"] = "https://x.example/" + x("u", 3001-18) }))), "invalid_blocks", "[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/elements/0/url]"},
		{"alt text 2000", blocksJSON(t, map[string]any{"type": "image", "image_url": "https://x/y.png", "alt_text": x("a", 2000)}), "", ""},
		{"alt text 2001", blocksJSON(t, map[string]any{"type": "image", "image_url": "https://x/y.png", "alt_text": x("a", 2001)}), "invalid_blocks", "[ERROR] must be less than 2001 characters [json-pointer:/blocks/0/alt_text]"},
		{"markdown block 12000", blocksJSON(t, map[string]any{"type": "markdown", "text": x("m", 12000)}), "", ""},
		{"markdown block 12001", blocksJSON(t, map[string]any{"type": "markdown", "text": x("m", 12001)}), "invalid_blocks", "[ERROR] must be less than 12001 characters [json-pointer:/blocks/0/text]"},
		{"option text 75", blocksJSON(t, actions(map[string]any{"type": "static_select", "action_id": "s", "options": []any{map[string]any{"text": plain(x("o", 75)), "value": "v"}}})), "", ""},
		{"option text 76", blocksJSON(t, actions(map[string]any{"type": "static_select", "action_id": "s", "options": []any{map[string]any{"text": plain(x("o", 76)), "value": "v"}}})), "invalid_blocks", "[ERROR] must be less than 76 characters [json-pointer:/blocks/0/elements/0/options/0/text/text]"},
		{"option value 150", blocksJSON(t, actions(map[string]any{"type": "static_select", "action_id": "s", "options": []any{map[string]any{"text": plain("o"), "value": x("v", 150)}}})), "", ""},
		{"placeholder 150", blocksJSON(t, actions(map[string]any{"type": "static_select", "action_id": "s", "placeholder": plain(x("p", 150)), "options": []any{map[string]any{"text": plain("o"), "value": "v"}}})), "", ""},
		{"placeholder 151", blocksJSON(t, actions(map[string]any{"type": "static_select", "action_id": "s", "placeholder": plain(x("p", 151)), "options": []any{map[string]any{"text": plain("o"), "value": "v"}}})), "invalid_blocks", "[ERROR] must be less than 151 characters [json-pointer:/blocks/0/elements/0/placeholder/text]"},
		{"every problem listed", blocksJSON(t, append(repeat(51, func(int) any { return map[string]any{"type": "divider"} }), section(x("a", 3001)))...), "invalid_blocks", "[ERROR] must be less than 3001 characters [json-pointer:/blocks/51/text/text]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := blockkit.Validate([]byte(tt.blocks))
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var be *blockkit.Error
			if !errors.As(err, &be) || be.Code != tt.wantCode || !slices.Contains(be.Messages, tt.wantMsg) {
				t.Fatalf("Validate = %v, want %s with %q", err, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

func TestErrorListsEveryProblem(t *testing.T) {
	t.Parallel()
	raw := blocksJSON(t, append(repeat(51, func(int) any { return map[string]any{"type": "divider"} }), section(strings.Repeat("a", 3001)))...)
	var be *blockkit.Error
	if err := blockkit.Validate([]byte(raw)); !errors.As(err, &be) || len(be.Messages) != 2 {
		t.Fatalf("Validate = %v, want two messages", err)
	}
	if !strings.HasPrefix(be.Error(), "invalid_blocks: [ERROR] no more than 50 items allowed [json-pointer:/blocks]; ") {
		t.Fatalf("Error() = %q", be.Error())
	}
}

// TestSlackGoBlocksAreAccepted guards against false refusals: what slack-go
// builds for the common blocks must pass.
func TestSlackGoBlocksAreAccepted(t *testing.T) {
	t.Parallel()
	txt := func(s string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.PlainTextType, s, false, false)
	}
	md := func(s string) *slack.TextBlockObject {
		return slack.NewTextBlockObject(slack.MarkdownType, s, false, false)
	}
	option := func(v string) *slack.OptionBlockObject { return slack.NewOptionBlockObject(v, txt(v), nil) }
	blocks := []slack.Block{
		slack.NewHeaderBlock(txt("Deal won")),
		slack.NewSectionBlock(md("*Initech*"), []*slack.TextBlockObject{md("*Amount*\n$120k"), md("*Owner*\n<@U0ACME0ALC>")},
			slack.NewAccessory(slack.NewButtonBlockElement("open", "deal-42", txt("Open")).WithStyle(slack.StylePrimary))),
		slack.NewDividerBlock(),
		slack.NewActionBlock("deal_actions",
			slack.NewButtonBlockElement("approve", "42", txt("Approve")).WithStyle(slack.StyleDanger),
			slack.NewOptionsSelectBlockElement(slack.OptTypeStatic, txt("Stage"), "stage", option("won"), option("lost")),
			slack.NewOverflowBlockElement("more", option("snooze"), option("mute")),
			slack.NewDatePickerBlockElement("close_date"),
		),
		slack.NewContextBlock("ctx", md("Updated by the CRM"), slack.NewImageBlockElement("https://x.example/logo.png", "logo")),
		slack.NewImageBlock("https://x.example/chart.png", "Pipeline chart", "chart", txt("Pipeline")),
		slack.NewInputBlock("note", txt("Note"), txt("Optional"), slack.NewPlainTextInputBlockElement(txt("Write…"), "note_input")),
		slack.NewRichTextBlock("rt", slack.NewRichTextSection(slack.NewRichTextSectionTextElement("hello", nil))),
	}
	raw, err := json.Marshal(blocks)
	if err != nil {
		t.Fatal(err)
	}
	if err := blockkit.Validate(raw); err != nil {
		t.Fatalf("slack-go blocks refused: %v\n%s", err, raw)
	}
}

func FuzzValidate(f *testing.F) {
	for _, seed := range []string{
		`[]`, `[{"type":"divider"}]`, `{"type":"x"}`, `[{"type":"section","text":{"type":"mrkdwn","text":"a"},"fields":[1,2]}]`,
		`[{"type":"actions","elements":[{"type":"button","text":{"type":"plain_text","text":"b"},"action_id":7}]}]`,
		`[{"type":"section","accessory":{"type":"static_select","option_groups":[{"options":[null]}]}}]`,
		`[{"type":"context","elements":[{"type":"image"},{"type":"mrkdwn"}]}]`, `[null,true,1.5e300,"x",[]]`,
		`[{"type":"input","label":{},"element":{"type":"plain_text_input","placeholder":{"type":"plain_text","text":""}}}]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		err := blockkit.Validate(raw)
		if err == nil {
			return
		}
		var be *blockkit.Error
		if !errors.As(err, &be) || (be.Code != "invalid_blocks" && be.Code != "invalid_blocks_format") || len(be.Messages) == 0 {
			t.Fatalf("blockkit.Validate(%q) = %#v", raw, err)
		}
	})
}
