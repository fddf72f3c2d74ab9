package card

import (
	"strings"
	"unicode/utf8"
)

// ellipsis ends every truncated text so a reader sees it was cut.
const ellipsis = "…"

// mrkdwn escapes s for Slack mrkdwn and cuts it to at most max runes. An
// entity such as "&amp;" is never split, so the result stays valid mrkdwn.
func mrkdwn(s string, max int) string {
	pieces := make([]string, 0, len(s))
	n := 0
	for _, r := range s {
		p := escapeRune(r)
		pieces = append(pieces, p)
		n += utf8.RuneCountInString(p)
	}
	if n > max {
		// Drop whole pieces until the ellipsis fits.
		for n > max-1 && len(pieces) > 0 {
			n -= utf8.RuneCountInString(pieces[len(pieces)-1])
			pieces = pieces[:len(pieces)-1]
		}
		pieces = append(pieces, ellipsis)
	}
	return strings.Join(pieces, "")
}

func escapeRune(r rune) string {
	switch r {
	case '&':
		return "&amp;"
	case '<':
		return "&lt;"
	case '>':
		return "&gt;"
	case utf8.RuneError:
		// Invalid UTF-8 would make Slack reject the whole message.
		return "\uFFFD"
	}
	return string(r)
}

// plain cuts a plain_text string (which Slack shows verbatim, so it is not
// escaped) to at most max runes and repairs invalid UTF-8.
func plain(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	runes := []rune(s)
	return string(runes[:max-1]) + ellipsis
}
