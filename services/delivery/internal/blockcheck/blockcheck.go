// Package blockcheck checks a message before it is sent, so a message Slack
// would refuse (or truncate) fails with a clear reason instead of being sent
// broken, and makes sure every message carries the plain-text fallback
// notifications and screen readers use.
//
// The blocks are checked by libs/blockkit, the one statement of Slack's
// Block Kit limits (the Slack stand-in refuses with the same validator).
// On top of that, delivery checks the message's text (at most
// blockkit.MaxMessageText characters, valid UTF-8), derives a fallback text
// when none is given, and sends only the block types crmslack builds
// (section, header, divider, actions, context, image, markdown): the others are refused rather than sent with the shallow
// checks blockkit has for them.
package blockcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/crmslack/crmslack/libs/blockkit"
)

// MaxFallback bounds a fallback derived from the blocks: a notification
// shows far less.
const MaxFallback = 3000

// supported are the block types delivery sends. rich_text, input, file,
// video, table and newer types have rules of their own that blockkit checks
// only in part; nothing in crmslack builds them, so they are refused rather
// than sent half-checked.
var supported = map[string]bool{
	"section": true, "header": true, "divider": true, "actions": true,
	"context": true, "image": true, "markdown": true,
}

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
	var problems []string
	fail := func(ptr, format string, a ...any) {
		problems = append(problems, fmt.Sprintf("[ERROR] %s [json-pointer:%s]", fmt.Sprintf(format, a...), ptr))
	}
	if utf8.RuneCountInString(text) > blockkit.MaxMessageText {
		fail("/text", "must be at most %d characters", blockkit.MaxMessageText)
	}
	if !utf8.ValidString(text) {
		fail("/text", "must be valid UTF-8")
	}
	var out Message
	var list []any
	if len(bytes.TrimSpace(blocks)) > 0 {
		var be *blockkit.Error
		switch err := blockkit.Validate(blocks); {
		case errors.As(err, &be):
			problems = append(problems, be.Messages...)
		case err != nil:
			fail("/blocks", "%v", err)
		default:
			// Validate accepted a JSON array: it decodes and compacts.
			_ = json.Unmarshal(blocks, &list)
			for i, b := range list {
				m, _ := b.(map[string]any)
				if typ, _ := m["type"].(string); !supported[typ] {
					fail(fmt.Sprintf("/blocks/%d/type", i), "block type %q is not supported by delivery", typ)
				}
			}
			if len(list) > 0 {
				var buf bytes.Buffer
				_ = json.Compact(&buf, blocks)
				out.Blocks = buf.Bytes()
			}
		}
	}
	out.Text = text
	if strings.TrimSpace(text) == "" && len(problems) == 0 {
		out.Text = fallback(list)
		if out.Text == "" {
			fail("/text", "a plain-text fallback is required and none can be derived from the blocks")
		}
	}
	if len(problems) > 0 {
		return Message{}, &Error{Problems: problems}
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
