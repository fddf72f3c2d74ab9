// Package blockcheck checks a message against Slack's Block Kit limits
// before it is sent, so a message Slack would refuse (or truncate) fails
// with a clear reason instead of being sent broken, and makes sure every
// message carries the plain-text fallback notifications and screen readers
// use.
//
// It checks what Slack checks on chat.postMessage: 50 blocks; section text
// 3000 and fields 10 × 2000; header 150; button text 75, value 2000, url
// 3000; action_id and block_id 255 and unique; element counts per container;
// the text of the message 40,000 characters. Block types it does not know
// are refused rather than guessed at.
package blockcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits Slack enforces on a message.
const (
	MaxBlocks           = 50
	MaxSectionText      = 3000
	MaxSectionFields    = 10
	MaxSectionFieldText = 2000
	MaxHeaderText       = 150
	MaxButtonText       = 75
	MaxButtonValue      = 2000
	MaxActionID         = 255
	MaxBlockID          = 255
	MaxURL              = 3000
	MaxActionsElements  = 25
	MaxContextElements  = 10
	MaxAltText          = 2000
	MaxMarkdownBlock    = 12000
	MaxOptionText       = 75
	MaxOptionValue      = 150
	MaxPlaceholder      = 150
	MaxInputLabel       = 2000
	// MaxText is where Slack refuses a message's text (msg_too_long).
	MaxText = 40000
	// MaxFallback bounds a fallback derived from the blocks: a
	// notification shows far less.
	MaxFallback = 3000
)

// ErrInvalid is wrapped by every error Check returns.
var ErrInvalid = errors.New("message not valid for Slack")

// Error lists every problem found, each with the JSON pointer of the part at
// fault, like Slack's own response_metadata.messages.
type Error struct {
	Problems []string
}

func (e *Error) Error() string {
	const show = 5
	p := e.Problems
	more := ""
	if len(p) > show {
		more = fmt.Sprintf(" (and %d more)", len(p)-show)
		p = p[:show]
	}
	return "message not valid for Slack: " + strings.Join(p, "; ") + more
}

func (e *Error) Unwrap() error { return ErrInvalid }

// Message is what Check returns for a valid message.
type Message struct {
	// Text is the fallback text to send: the given text, or one derived
	// from the blocks when none was given.
	Text string
	// Blocks is the blocks JSON, compacted; nil when there are none.
	Blocks json.RawMessage
}

// Check validates text and blocks (a JSON array, or empty for none). With no
// text it derives the fallback from the blocks' header, section and context
// texts; a message from which no fallback can be derived fails.
func Check(text string, blocks []byte) (Message, error) {
	v := &validator{blockIDs: map[string]bool{}}
	var out Message
	if utf8.RuneCountInString(text) > MaxText {
		v.fail("/text", "must be at most %d characters", MaxText)
	}
	if !utf8.ValidString(text) {
		v.fail("/text", "must be valid UTF-8")
	}
	var list []any
	if len(bytes.TrimSpace(blocks)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(blocks))
		dec.UseNumber()
		var doc any
		if err := dec.Decode(&doc); err != nil || dec.More() {
			v.fail("/blocks", "must be a JSON array")
		} else if arr, ok := doc.([]any); !ok {
			v.fail("/blocks", "must be a JSON array")
		} else {
			list = arr
			if len(list) > MaxBlocks {
				v.fail("/blocks", "at most %d blocks, got %d", MaxBlocks, len(list))
			}
			for i, b := range list {
				v.block(fmt.Sprintf("/blocks/%d", i), b)
			}
			if len(list) > 0 {
				var buf bytes.Buffer
				if err := json.Compact(&buf, blocks); err == nil {
					out.Blocks = buf.Bytes()
				}
			}
		}
	}
	out.Text = text
	if strings.TrimSpace(text) == "" && len(v.problems) == 0 {
		out.Text = fallback(list)
		if out.Text == "" {
			v.fail("/text", "a plain-text fallback is required and none can be derived from the blocks")
		}
	}
	if len(v.problems) > 0 {
		return Message{}, &Error{Problems: v.problems}
	}
	return out, nil
}

// fallback joins the visible texts of header, section, context and markdown
// blocks, cut at MaxFallback characters.
func fallback(blocks []any) string {
	var parts []string
	add := func(x any) {
		if m, ok := x.(map[string]any); ok {
			if s, ok := m["text"].(string); ok && strings.TrimSpace(s) != "" {
				parts = append(parts, strings.TrimSpace(s))
			}
		}
	}
	for _, b := range blocks {
		m, _ := b.(map[string]any)
		switch m["type"] {
		case "header", "section":
			add(m["text"])
			if fs, ok := m["fields"].([]any); ok && m["text"] == nil {
				for _, f := range fs {
					add(f)
				}
			}
		case "context":
			if es, ok := m["elements"].([]any); ok {
				for _, e := range es {
					add(e)
				}
			}
		case "markdown":
			if s, ok := m["text"].(string); ok && strings.TrimSpace(s) != "" {
				parts = append(parts, strings.TrimSpace(s))
			}
		}
	}
	s := strings.Join(parts, "\n")
	if utf8.RuneCountInString(s) > MaxFallback {
		r := []rune(s)
		s = string(r[:MaxFallback-1]) + "…"
	}
	return s
}

type validator struct {
	problems []string
	blockIDs map[string]bool
}

func (v *validator) fail(ptr, format string, a ...any) {
	v.problems = append(v.problems, ptr+": "+fmt.Sprintf(format, a...))
}

func (v *validator) object(ptr string, x any) (map[string]any, bool) {
	m, ok := x.(map[string]any)
	if !ok {
		v.fail(ptr, "must be an object")
	}
	return m, ok
}

// array checks m[key] is an array of minItems..maxItems.
func (v *validator) array(ptr string, m map[string]any, key string, minItems, maxItems int) []any {
	x, present := m[key]
	if !present {
		v.fail(ptr, "%s is required", key)
		return nil
	}
	arr, ok := x.([]any)
	switch {
	case !ok:
		v.fail(ptr+"/"+key, "must be an array")
		return nil
	case len(arr) < minItems:
		v.fail(ptr+"/"+key, "at least %d items", minItems)
	case len(arr) > maxItems:
		v.fail(ptr+"/"+key, "at most %d items, got %d", maxItems, len(arr))
	}
	return arr
}

// str checks a string field: present when required, non-empty, at most
// maxLen characters.
func (v *validator) str(ptr string, m map[string]any, key string, maxLen int, required bool) (string, bool) {
	x, present := m[key]
	if !present {
		if required {
			v.fail(ptr, "%s is required", key)
		}
		return "", false
	}
	s, ok := x.(string)
	switch {
	case !ok:
		v.fail(ptr+"/"+key, "must be a string")
		return "", false
	case s == "" && required:
		v.fail(ptr+"/"+key, "must not be empty")
	case utf8.RuneCountInString(s) > maxLen:
		v.fail(ptr+"/"+key, "at most %d characters, got %d", maxLen, utf8.RuneCountInString(s))
	}
	return s, true
}

// text checks a text object: plain_text (or mrkdwn unless plainOnly) with
// text of 1..maxLen characters.
func (v *validator) text(ptr string, x any, maxLen int, plainOnly bool) {
	m, ok := v.object(ptr, x)
	if !ok {
		return
	}
	switch typ, _ := m["type"].(string); {
	case typ == "plain_text":
	case typ == "mrkdwn" && !plainOnly:
	case plainOnly:
		v.fail(ptr+"/type", "must be plain_text")
	default:
		v.fail(ptr+"/type", "must be plain_text or mrkdwn")
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
		v.fail(ptr, "type is required")
		return
	}
	if id, ok := v.str(ptr, m, "block_id", MaxBlockID, false); ok {
		if v.blockIDs[id] {
			v.fail(ptr+"/block_id", "duplicate block_id %q", id)
		}
		v.blockIDs[id] = true
	}
	actionIDs := map[string]bool{}
	switch typ {
	case "section":
		_, hasText := m["text"]
		_, hasFields := m["fields"]
		if !hasText && !hasFields {
			v.fail(ptr, "a section needs text or fields")
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
			v.fail(ptr, "text is required")
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
	case "markdown":
		v.str(ptr, m, "text", MaxMarkdownBlock, true)
	default:
		// rich_text, input, video, table and newer types have rules of
		// their own; nothing in crmslack builds them, so they are refused
		// rather than sent unchecked.
		v.fail(ptr+"/type", "block type %q is not supported", typ)
	}
}

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
	actionsElements   = set(append([]string{"button", "checkboxes", "datepicker", "datetimepicker", "overflow", "radio_buttons", "timepicker", "workflow_button"}, selectElements...)...)
	accessoryElements = set(append([]string{"button", "checkboxes", "datepicker", "image", "overflow", "radio_buttons", "timepicker", "workflow_button"}, selectElements...)...)
)

func set(xs ...string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

func (v *validator) element(ptr string, x any, allowed map[string]bool, actionIDs map[string]bool) {
	m, ok := v.object(ptr, x)
	if !ok {
		return
	}
	typ, _ := m["type"].(string)
	if !allowed[typ] {
		v.fail(ptr+"/type", "element type %q is not allowed here", typ)
		return
	}
	if typ == "image" {
		v.image(ptr, m)
		return
	}
	if id, ok := v.str(ptr, m, "action_id", MaxActionID, false); ok {
		if actionIDs[id] {
			v.fail(ptr+"/action_id", "duplicate action_id %q", id)
		}
		actionIDs[id] = true
	}
	v.optionalText(ptr, m, "placeholder", MaxPlaceholder, true)
	switch typ {
	case "button":
		if _, ok := m["text"]; !ok {
			v.fail(ptr, "text is required")
		} else {
			v.text(ptr+"/text", m["text"], MaxButtonText, true)
		}
		v.str(ptr, m, "value", MaxButtonValue, false)
		v.str(ptr, m, "url", MaxURL, false)
		if style, ok := m["style"]; ok && style != "primary" && style != "danger" {
			v.fail(ptr+"/style", "must be primary or danger")
		}
	case "overflow":
		v.options(ptr, m, "options", 1, 5)
	case "checkboxes", "radio_buttons":
		v.options(ptr, m, "options", 1, 10)
	case "static_select", "multi_static_select":
		if _, ok := m["option_groups"]; ok {
			for i, g := range v.array(ptr, m, "option_groups", 1, 100) {
				gp := fmt.Sprintf("%s/option_groups/%d", ptr, i)
				if gm, ok := v.object(gp, g); ok {
					v.text(gp+"/label", gm["label"], MaxOptionText, true)
					v.options(gp, gm, "options", 1, 100)
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
			v.fail(op, "text is required")
		} else {
			v.text(op+"/text", om["text"], MaxOptionText, false)
		}
		v.str(op, om, "value", MaxOptionValue, true)
		v.optionalText(op, om, "description", MaxOptionText, true)
		v.str(op, om, "url", MaxURL, false)
	}
}
