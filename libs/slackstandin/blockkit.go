package slackstandin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Block Kit limits Slack enforces on messages.
const (
	maxBlocks            = 50
	maxSectionText       = 3000
	maxSectionFields     = 10
	maxSectionFieldText  = 2000
	maxHeaderText        = 150
	maxButtonText        = 75
	maxButtonValue       = 2000
	maxActionID          = 255
	maxBlockID           = 255
	maxURL               = 3000
	maxActionsElements   = 25
	maxContextElements   = 10
	maxAltText           = 2000
	maxMarkdownBlockText = 12000
	maxOptionText        = 75
	maxOptionValue       = 150
	maxPlaceholder       = 150
)

// BlocksError is Slack's refusal of a blocks argument. Code is
// invalid_blocks when a block breaks a rule and invalid_blocks_format when
// the argument is not a JSON array; Messages are Slack's
// response_metadata.messages, like
// "[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]".
type BlocksError struct {
	Code     string
	Messages []string
}

func (e *BlocksError) Error() string { return e.Code + ": " + strings.Join(e.Messages, "; ") }

// ValidateBlocks checks a message's blocks JSON the way chat.postMessage
// does and returns a *BlocksError when Slack would refuse it.
func ValidateBlocks(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil || dec.More() {
		return &BlocksError{Code: "invalid_blocks_format", Messages: []string{"[ERROR] blocks must be a JSON array [json-pointer:/blocks]"}}
	}
	blocks, ok := doc.([]any)
	if !ok {
		return &BlocksError{Code: "invalid_blocks_format", Messages: []string{"[ERROR] must provide an array [json-pointer:/blocks]"}}
	}
	v := &blockValidator{blockIDs: map[string]bool{}}
	if len(blocks) > maxBlocks {
		v.fail("/blocks", "no more than %d items allowed", maxBlocks)
	}
	for i, b := range blocks {
		v.block(fmt.Sprintf("/blocks/%d", i), b)
	}
	if len(v.msgs) > 0 {
		return &BlocksError{Code: "invalid_blocks", Messages: v.msgs}
	}
	return nil
}

// blockValidator collects every problem, as Slack lists them all.
type blockValidator struct {
	msgs     []string
	blockIDs map[string]bool
}

func (v *blockValidator) fail(ptr, format string, a ...any) {
	v.msgs = append(v.msgs, fmt.Sprintf("[ERROR] %s [json-pointer:%s]", fmt.Sprintf(format, a...), ptr))
}

// object returns x as a JSON object or reports it.
func (v *blockValidator) object(ptr string, x any) (map[string]any, bool) {
	m, ok := x.(map[string]any)
	if !ok {
		v.fail(ptr, "must provide an object")
	}
	return m, ok
}

// array returns field key of m as an array of min..max items or reports it.
func (v *blockValidator) array(ptr string, m map[string]any, key string, minItems, maxItems int) []any {
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
func (v *blockValidator) str(ptr string, m map[string]any, key string, maxLen int, required bool) (string, bool) {
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
func (v *blockValidator) text(ptr string, x any, maxLen int, plainOnly bool) {
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

func (v *blockValidator) optionalText(ptr string, m map[string]any, key string, maxLen int, plainOnly bool) {
	if x, ok := m[key]; ok {
		v.text(ptr+"/"+key, x, maxLen, plainOnly)
	}
}

func (v *blockValidator) block(ptr string, x any) {
	m, ok := v.object(ptr, x)
	if !ok {
		return
	}
	typ, ok := m["type"].(string)
	if !ok {
		v.fail(ptr, "missing required field: type")
		return
	}
	if id, ok := v.str(ptr, m, "block_id", maxBlockID, false); ok {
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
		v.optionalText(ptr, m, "text", maxSectionText, false)
		if hasFields {
			for i, f := range v.array(ptr, m, "fields", 1, maxSectionFields) {
				v.text(fmt.Sprintf("%s/fields/%d", ptr, i), f, maxSectionFieldText, false)
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
		v.text(ptr+"/text", m["text"], maxHeaderText, true)
	case "divider":
	case "actions":
		for i, e := range v.array(ptr, m, "elements", 1, maxActionsElements) {
			v.element(fmt.Sprintf("%s/elements/%d", ptr, i), e, actionsElements, actionIDs)
		}
	case "context":
		for i, e := range v.array(ptr, m, "elements", 1, maxContextElements) {
			ep := fmt.Sprintf("%s/elements/%d", ptr, i)
			if em, ok := e.(map[string]any); ok && em["type"] == "image" {
				v.image(ep, em)
				continue
			}
			v.text(ep, e, maxSectionText, false)
		}
	case "image":
		v.image(ptr, m)
		v.optionalText(ptr, m, "title", maxAltText, true)
	case "input":
		if _, ok := m["label"]; !ok {
			v.fail(ptr, "missing required field: label")
		} else {
			v.text(ptr+"/label", m["label"], maxAltText, true)
		}
		if e, ok := m["element"]; ok {
			v.element(ptr+"/element", e, inputElements, actionIDs)
		} else {
			v.fail(ptr, "missing required field: element")
		}
		v.optionalText(ptr, m, "hint", maxAltText, true)
	case "rich_text":
		v.array(ptr, m, "elements", 0, 1<<20)
	case "markdown":
		v.str(ptr, m, "text", maxMarkdownBlockText, true)
	case "file":
		v.str(ptr, m, "external_id", 255, true)
		v.str(ptr, m, "source", 255, true)
	case "video":
		v.str(ptr, m, "alt_text", maxAltText, true)
		v.str(ptr, m, "video_url", maxURL, true)
		v.str(ptr, m, "thumbnail_url", maxURL, true)
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
func (v *blockValidator) image(ptr string, m map[string]any) {
	if _, ok := m["slack_file"]; ok {
		v.object(ptr+"/slack_file", m["slack_file"])
	} else {
		v.str(ptr, m, "image_url", maxURL, true)
	}
	v.str(ptr, m, "alt_text", maxAltText, true)
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
func (v *blockValidator) element(ptr string, x any, allowed map[string]bool, actionIDs map[string]bool) {
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
	if id, ok := v.str(ptr, m, "action_id", maxActionID, false); ok {
		if actionIDs[id] {
			v.fail(ptr+"/action_id", "duplicate action_id: %s", id)
		}
		actionIDs[id] = true
	}
	v.optionalText(ptr, m, "placeholder", maxPlaceholder, true)
	switch typ {
	case "button":
		if _, ok := m["text"]; !ok {
			v.fail(ptr, "missing required field: text")
		} else {
			v.text(ptr+"/text", m["text"], maxButtonText, true)
		}
		v.str(ptr, m, "value", maxButtonValue, false)
		v.str(ptr, m, "url", maxURL, false)
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

func (v *blockValidator) options(ptr string, m map[string]any, key string, minItems, maxItems int) {
	for i, o := range v.array(ptr, m, key, minItems, maxItems) {
		op := fmt.Sprintf("%s/%s/%d", ptr, key, i)
		om, ok := v.object(op, o)
		if !ok {
			continue
		}
		if _, ok := om["text"]; !ok {
			v.fail(op, "missing required field: text")
		} else {
			v.text(op+"/text", om["text"], maxOptionText, false)
		}
		v.str(op, om, "value", maxOptionValue, true)
		v.optionalText(op, om, "description", maxOptionText, false)
		v.str(op, om, "url", maxURL, false)
	}
}
