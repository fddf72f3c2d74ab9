// Package blockkit is crmslack's one statement of Slack's Block Kit limits
// and its one validator of a message's blocks, shared by the Slack stand-in
// (which refuses what Slack refuses, with Slack's messages), the delivery
// service (which checks a message before sending it) and libs/card (which
// renders within the limits).
//
// Lengths are counted in characters (runes), as Slack counts them.
// https://docs.slack.dev/reference/block-kit/blocks
package blockkit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Block Kit limits Slack enforces on a message.
const (
	// MaxBlocks is how many blocks a message may have.
	MaxBlocks = 50
	// MaxSectionText bounds a section's text, and each context text element.
	MaxSectionText = 3000
	// MaxSectionFields is how many fields a section may have.
	MaxSectionFields = 10
	// MaxSectionFieldText bounds each section field's text.
	MaxSectionFieldText = 2000
	// MaxHeaderText bounds a header's text, which must be plain_text.
	MaxHeaderText = 150
	// MaxButtonText bounds a button's text, which must be plain_text.
	MaxButtonText = 75
	// MaxButtonValue bounds a button's value.
	MaxButtonValue = 2000
	// MaxActionID bounds an element's action_id, unique within its block.
	MaxActionID = 255
	// MaxBlockID bounds a block's block_id, unique within the message.
	MaxBlockID = 255
	// MaxURL bounds a URL: a button's url, an image_url, a video's URLs.
	MaxURL = 3000
	// MaxActionsElements is how many elements an actions block may have.
	MaxActionsElements = 25
	// MaxContextElements is how many elements a context block may have.
	MaxContextElements = 10
	// MaxAltText bounds an image's alt_text (and titles, labels and hints).
	MaxAltText = 2000
	// MaxMarkdownBlockText bounds a markdown block's text.
	MaxMarkdownBlockText = 12000
	// MaxOptionText bounds an option's text and description.
	MaxOptionText = 75
	// MaxOptionValue bounds an option's value.
	MaxOptionValue = 150
	// MaxPlaceholder bounds an element's placeholder, which must be plain_text.
	MaxPlaceholder = 150
	// MaxMessageText is where Slack refuses a message's top-level text
	// with msg_too_long.
	MaxMessageText = 40000
)

// Error codes Slack answers a refused blocks argument with.
const (
	// CodeInvalidBlocks: the blocks are an array but a block breaks a rule.
	CodeInvalidBlocks = "invalid_blocks"
	// CodeInvalidBlocksFormat: the blocks are not a JSON array.
	CodeInvalidBlocksFormat = "invalid_blocks_format"
)

// Error is Slack's refusal of a blocks argument. Code is CodeInvalidBlocks or
// CodeInvalidBlocksFormat; Messages are Slack's response_metadata.messages,
// every problem found, like
// "[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]".
type Error struct {
	Code     string
	Messages []string
}

func (e *Error) Error() string { return e.Code + ": " + strings.Join(e.Messages, "; ") }

// Validate checks a message's blocks JSON the way chat.postMessage does and
// returns an *Error when Slack would refuse it.
func Validate(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil || dec.More() {
		return &Error{Code: CodeInvalidBlocksFormat, Messages: []string{"[ERROR] blocks must be a JSON array [json-pointer:/blocks]"}}
	}
	blocks, ok := doc.([]any)
	if !ok {
		return &Error{Code: CodeInvalidBlocksFormat, Messages: []string{"[ERROR] must provide an array [json-pointer:/blocks]"}}
	}
	v := &validator{blockIDs: map[string]bool{}}
	if len(blocks) > MaxBlocks {
		v.fail("/blocks", "no more than %d items allowed", MaxBlocks)
	}
	for i, b := range blocks {
		v.block(fmt.Sprintf("/blocks/%d", i), b)
	}
	if len(v.msgs) > 0 {
		return &Error{Code: CodeInvalidBlocks, Messages: v.msgs}
	}
	return nil
}

// validator collects every problem, as Slack lists them all.
type validator struct {
	msgs     []string
	blockIDs map[string]bool
}

func (v *validator) fail(ptr, format string, a ...any) {
	v.msgs = append(v.msgs, fmt.Sprintf("[ERROR] %s [json-pointer:%s]", fmt.Sprintf(format, a...), ptr))
}

// object returns x as a JSON object or reports it.
func (v *validator) object(ptr string, x any) (map[string]any, bool) {
	m, ok := x.(map[string]any)
	if !ok {
		v.fail(ptr, "must provide an object")
	}
	return m, ok
}

// array returns field key of m as an array of min..max items or reports it.
func (v *validator) array(ptr string, m map[string]any, key string, minItems, maxItems int) []any {
	x, present := m[key]
	if !present {
		v.fail(ptr, "missing required field: %s", key)
		return nil
	}
	arr, ok := x.([]any)
	switch {
	case !ok:
		v.fail(ptr+"/"+key, "must provide an array")
		return nil
	case len(arr) < minItems:
		v.fail(ptr+"/"+key, "must provide at least %d items", minItems)
	case len(arr) > maxItems:
		v.fail(ptr+"/"+key, "no more than %d items allowed", maxItems)
	}
	return arr
}

// str checks an optional string field's length; required fields must be
// present and non-empty.
func (v *validator) str(ptr string, m map[string]any, key string, maxLen int, required bool) (string, bool) {
	x, present := m[key]
	if !present {
		if required {
			v.fail(ptr, "missing required field: %s", key)
		}
		return "", false
	}
	s, ok := x.(string)
	if !ok {
		v.fail(ptr+"/"+key, "must be a string")
		return "", false
	}
	n := utf8.RuneCountInString(s)
	if required && n == 0 {
		v.fail(ptr+"/"+key, "must be more than 0 characters")
	}
	if n > maxLen {
		v.fail(ptr+"/"+key, "must be less than %d characters", maxLen+1)
	}
	return s, true
}

// text checks a composition text object; plainOnly refuses mrkdwn.
func (v *validator) text(ptr string, x any, maxLen int, plainOnly bool) {
	m, ok := v.object(ptr, x)
	if !ok {
		return
	}
	switch m["type"] {
	case "plain_text":
	case "mrkdwn":
		if plainOnly {
			v.fail(ptr+"/type", "must be a valid enum value: plain_text")
			return
		}
	default:
		v.fail(ptr, "failed to match all allowed schemas")
		return
	}
	v.str(ptr, m, "text", maxLen, true)
}

func (v *validator) optionalText(ptr string, m map[string]any, key string, maxLen int, plainOnly bool) {
	if x, ok := m[key]; ok {
		v.text(ptr+"/"+key, x, maxLen, plainOnly)
	}
}

func (v *validator) block(ptr string, x any) {
	m, ok := v.object(ptr, x)
	if !ok {
		return
	}
	typ, ok := m["type"].(string)
	if !ok {
		v.fail(ptr, "missing required field: type")
		return
	}
	if id, ok := v.str(ptr, m, "block_id", MaxBlockID, false); ok {
		if v.blockIDs[id] {
			v.fail(ptr+"/block_id", "duplicate block_id: %s", id)
		}
		v.blockIDs[id] = true
	}
	actionIDs := map[string]bool{} // action_id is unique within a block
	switch typ {
	case "section":
		_, hasText := m["text"]
		_, hasFields := m["fields"]
		if !hasText && !hasFields {
			v.fail(ptr, "must provide either text or fields")
		}
		v.optionalText(ptr, m, "text", MaxSectionText, false)
		if hasFields {
			for i, f := range v.array(ptr, m, "fields", 1, MaxSectionFields) {
				v.text(fmt.Sprintf("%s/fields/%d", ptr, i), f, MaxSectionFieldText, false)
			}
		}
		if acc, ok := m["accessory"]; ok {
			v.element(ptr+"/accessory", acc, accessoryElements, actionIDs)
		}
	case "header":
		if _, ok := m["text"]; !ok {
			v.fail(ptr, "missing required field: text")
			return
		}
		v.text(ptr+"/text", m["text"], MaxHeaderText, true)
	case "divider":
	case "actions":
		for i, e := range v.array(ptr, m, "elements", 1, MaxActionsElements) {
			v.element(fmt.Sprintf("%s/elements/%d", ptr, i), e, actionsElements, actionIDs)
		}
	case "context":
		for i, e := range v.array(ptr, m, "elements", 1, MaxContextElements) {
			ep := fmt.Sprintf("%s/elements/%d", ptr, i)
			if em, ok := e.(map[string]any); ok && em["type"] == "image" {
				v.image(ep, em)
				continue
			}
			v.text(ep, e, MaxSectionText, false)
		}
	case "image":
		v.image(ptr, m)
		v.optionalText(ptr, m, "title", MaxAltText, true)
	case "input":
		if _, ok := m["label"]; !ok {
			v.fail(ptr, "missing required field: label")
		} else {
			v.text(ptr+"/label", m["label"], MaxAltText, true)
		}
		if e, ok := m["element"]; ok {
			v.element(ptr+"/element", e, inputElements, actionIDs)
		} else {
			v.fail(ptr, "missing required field: element")
		}
		v.optionalText(ptr, m, "hint", MaxAltText, true)
	case "rich_text":
		v.array(ptr, m, "elements", 0, 1<<20)
	case "markdown":
		v.str(ptr, m, "text", MaxMarkdownBlockText, true)
	case "file":
		v.str(ptr, m, "external_id", 255, true)
		v.str(ptr, m, "source", 255, true)
	case "video":
		v.str(ptr, m, "alt_text", MaxAltText, true)
		v.str(ptr, m, "video_url", MaxURL, true)
		v.str(ptr, m, "thumbnail_url", MaxURL, true)
		if _, ok := m["title"]; !ok {
			v.fail(ptr, "missing required field: title")
		} else {
			v.text(ptr+"/title", m["title"], 200, true)
		}
	case "table":
		v.array(ptr, m, "rows", 1, 100)
	default:
		v.fail(ptr+"/type", "unsupported type: %s", typ)
	}
}

// image checks an image block or element: a URL or a Slack file, and alt text.
func (v *validator) image(ptr string, m map[string]any) {
	if _, ok := m["slack_file"]; ok {
		v.object(ptr+"/slack_file", m["slack_file"])
	} else {
		v.str(ptr, m, "image_url", MaxURL, true)
	}
	v.str(ptr, m, "alt_text", MaxAltText, true)
}

var (
	selectElements = []string{
		"static_select", "external_select", "users_select", "conversations_select", "channels_select",
		"multi_static_select", "multi_external_select", "multi_users_select", "multi_conversations_select", "multi_channels_select",
	}
	actionsElements   = elementSet(append([]string{"button", "checkboxes", "datepicker", "datetimepicker", "overflow", "radio_buttons", "timepicker", "workflow_button", "rich_text_input"}, selectElements...)...)
	accessoryElements = elementSet(append([]string{"button", "checkboxes", "datepicker", "image", "overflow", "radio_buttons", "timepicker", "workflow_button"}, selectElements...)...)
	inputElements     = elementSet(append([]string{"checkboxes", "datepicker", "datetimepicker", "email_text_input", "file_input", "number_text_input", "plain_text_input", "radio_buttons", "rich_text_input", "timepicker", "url_text_input"}, selectElements...)...)
)

func elementSet(types ...string) map[string]bool {
	set := make(map[string]bool, len(types))
	for _, t := range types {
		set[t] = true
	}
	return set
}

// element checks an interactive element (or image) allowed in its container.
func (v *validator) element(ptr string, x any, allowed map[string]bool, actionIDs map[string]bool) {
	m, ok := v.object(ptr, x)
	if !ok {
		return
	}
	typ, _ := m["type"].(string)
	if !allowed[typ] {
		v.fail(ptr, "failed to match all allowed schemas")
		return
	}
	if typ == "image" {
		v.image(ptr, m)
		return
	}
	if id, ok := v.str(ptr, m, "action_id", MaxActionID, false); ok {
		if actionIDs[id] {
			v.fail(ptr+"/action_id", "duplicate action_id: %s", id)
		}
		actionIDs[id] = true
	}
	v.optionalText(ptr, m, "placeholder", MaxPlaceholder, true)
	switch typ {
	case "button":
		if _, ok := m["text"]; !ok {
			v.fail(ptr, "missing required field: text")
		} else {
			v.text(ptr+"/text", m["text"], MaxButtonText, true)
		}
		v.str(ptr, m, "value", MaxButtonValue, false)
		v.str(ptr, m, "url", MaxURL, false)
		if style, ok := m["style"]; ok && style != "primary" && style != "danger" {
			v.fail(ptr+"/style", "must be a valid enum value: primary, danger")
		}
	case "overflow":
		v.options(ptr, m, "options", 1, 5)
	case "checkboxes", "radio_buttons":
		v.options(ptr, m, "options", 1, 10)
	case "static_select", "multi_static_select":
		if _, ok := m["option_groups"]; ok {
			for i, g := range v.array(ptr, m, "option_groups", 1, 100) {
				if gm, ok := v.object(fmt.Sprintf("%s/option_groups/%d", ptr, i), g); ok {
					v.options(fmt.Sprintf("%s/option_groups/%d", ptr, i), gm, "options", 1, 100)
				}
			}
		} else {
			v.options(ptr, m, "options", 1, 100)
		}
	}
}

func (v *validator) options(ptr string, m map[string]any, key string, minItems, maxItems int) {
	for i, o := range v.array(ptr, m, key, minItems, maxItems) {
		op := fmt.Sprintf("%s/%s/%d", ptr, key, i)
		om, ok := v.object(op, o)
		if !ok {
			continue
		}
		if _, ok := om["text"]; !ok {
			v.fail(op, "missing required field: text")
		} else {
			v.text(op+"/text", om["text"], MaxOptionText, false)
		}
		v.str(op, om, "value", MaxOptionValue, true)
		v.optionalText(op, om, "description", MaxOptionText, false)
		v.str(op, om, "url", MaxURL, false)
	}
}
