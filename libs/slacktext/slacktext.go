// Package slacktext writes CRM text into Slack messages: escaped for mrkdwn
// so it cannot mention anyone or forge a link, and cut to Block Kit's limits
// without splitting an entity or a rune. Every renderer uses it, so a text is
// escaped and cut the same way wherever it is shown.
package slacktext

import (
	"strings"
	"unicode/utf8"
)

// Ellipsis ends every cut text so a reader sees it was cut.
const Ellipsis = "…"

var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// Escape makes s safe as mrkdwn: "&", "<" and ">" become entities and
// invalid UTF-8 (which makes Slack refuse the whole message) becomes U+FFFD.
func Escape(s string) string {
	return escaper.Replace(strings.ToValidUTF8(s, "\uFFFD"))
}

// Clip escapes s and cuts the result to at most max runes.
func Clip(s string, max int) string { return Cut(Escape(s), max) }

// Cut bounds mrkdwn that is already escaped to at most max runes, the last
// being the ellipsis. An entity such as "&amp;" is never split: in escaped
// text every "&" starts one.
func Cut(s string, max int) string {
	end, cut := runeCut(s, max)
	if !cut {
		return s
	}
	if amp := strings.LastIndexByte(s[:end], '&'); amp >= 0 && !strings.Contains(s[amp:end], ";") {
		end = amp
	}
	return s[:end] + Ellipsis
}

// Plain cuts plain_text (which Slack shows verbatim, so it is not escaped)
// to at most max runes and repairs invalid UTF-8.
func Plain(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	end, cut := runeCut(s, max)
	if !cut {
		return s
	}
	return s[:end] + Ellipsis
}

// runeCut reports whether s is longer than max runes and, if so, the byte
// offset after its first max-1 runes, where the ellipsis goes.
func runeCut(s string, max int) (int, bool) {
	if utf8.RuneCountInString(s) <= max {
		return len(s), false
	}
	if max < 1 {
		return 0, true
	}
	n := 0
	for i := range s {
		if n == max-1 {
			return i, true
		}
		n++
	}
	return len(s), true
}
