package template

import (
	"strings"
	"unicode/utf8"
)

// seg is a piece of rendered mrkdwn. An atomic one (an entity, a <…> link)
// is kept whole or dropped when the text is cut; others may be cut
// between runes.
type seg struct {
	s      string
	runes  int
	atomic bool
}

type segments []seg

func (ss *segments) add(s string, atomic bool) {
	if s != "" {
		*ss = append(*ss, seg{s: s, runes: utf8.RuneCountInString(s), atomic: atomic})
	}
}

func (ss *segments) atomic(s string) { ss.add(s, true) }

// literal adds admin text; its <…> spans and &…; entities stay whole.
func (ss *segments) literal(s string) {
	s = strings.ToValidUTF8(s, "\uFFFD")
	start := 0
	for i := 0; i < len(s); i++ {
		var end int
		switch s[i] {
		case '<':
			if j := strings.IndexByte(s[i:], '>'); j > 0 {
				end = i + j + 1
			}
		case '&':
			if j := strings.IndexByte(s[i:], ';'); j > 1 && j <= 10 {
				end = i + j + 1
			}
		}
		if end > 0 {
			ss.add(s[start:i], false)
			ss.add(s[i:end], true)
			start = end
			i = end - 1
		}
	}
	ss.add(s[start:], false)
}

// value adds an escaped value; each entity it escapes to stays whole.
func (ss *segments) value(v string) {
	var b strings.Builder
	escapeInto(&b, v)
	ss.literal(b.String())
}

// join writes the segments, cut to at most max runes with "…" at the end
// when they do not fit.
func (ss segments) join(max int) string {
	total := 0
	for _, s := range ss {
		total += s.runes
	}
	var b strings.Builder
	if total <= max || max <= 0 {
		for _, s := range ss {
			b.WriteString(s.s)
		}
		return b.String()
	}
	room := max - 1 // for the ellipsis
	for _, s := range ss {
		if s.runes <= room {
			b.WriteString(s.s)
			room -= s.runes
			continue
		}
		if !s.atomic {
			n := 0
			for i := range s.s {
				if n == room {
					b.WriteString(s.s[:i])
					break
				}
				n++
			}
		}
		break
	}
	// A mark left before the ellipsis would sit at a word boundary the
	// value did not have, where it could close the admin's formatting.
	return strings.TrimRight(b.String(), "*_~`") + ellipsis
}
