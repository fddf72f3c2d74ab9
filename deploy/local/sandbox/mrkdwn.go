package sandbox

import (
	"html"
	"html/template"
	"regexp"
	"strings"
)

// Slack's mrkdwn, rendered as Slack's client shows it. Written here because
// no Go library renders mrkdwn; it covers what the product writes: bold,
// italics, strike-through, code, links, mentions, dates and line breaks.

var (
	reAngle  = regexp.MustCompile(`<([^<>]*)>`)
	reCode   = regexp.MustCompile("`([^`\n]+)`")
	reBold   = regexp.MustCompile(`(^|[^\pL\pN*])\*([^*\n]+)\*`)
	reItalic = regexp.MustCompile(`(^|[^\pL\pN_])_([^_\n]+)_`)
	reStrike = regexp.MustCompile(`(^|[^\pL\pN~])~([^~\n]+)~`)
	reEmoji  = regexp.MustCompile(`:([a-z0-9_+-]+):`)
)

// emoji are the shortcodes the product writes; others stay as typed.
var emoji = map[string]string{
	"tada": "🎉", "warning": "⚠️", "ticket": "🎫", "telephone_receiver": "📞", "speech_balloon": "💬",
	"rotating_light": "🚨", "mega": "📣", "mag": "🔍", "loudspeaker": "📢", "lock": "🔒",
	"globe_with_meridians": "🌐", "email": "📧", "electric_plug": "🔌", "bell": "🔔", "bar_chart": "📊",
	"calendar": "📅", "white_check_mark": "✅", "x": "❌", "phone": "☎️", "memo": "📝",
}

// mrkdwn renders Slack text as HTML. Every character of the input is
// escaped first; only the tags written here are markup.
func mrkdwn(s string, names func(id string) string) template.HTML {
	var b strings.Builder
	last := 0
	for _, m := range reAngle.FindAllStringSubmatchIndex(s, -1) {
		b.WriteString(inline(s[last:m[0]]))
		b.WriteString(angle(s[m[2]:m[3]], names))
		last = m[1]
	}
	b.WriteString(inline(s[last:]))
	return template.HTML(quotes(b.String()))
}

// quotes turns lines starting with ">" (escaped by now) into block quotes
// and the other line breaks into <br>.
func quotes(s string) string {
	lines := strings.Split(s, "\n")
	var b strings.Builder
	for i, l := range lines {
		if q, ok := strings.CutPrefix(l, "&gt;"); ok {
			b.WriteString("<blockquote>" + strings.TrimPrefix(q, " ") + "</blockquote>")
			continue
		}
		b.WriteString(l)
		if i < len(lines)-1 && !strings.HasPrefix(lines[i+1], "&gt;") {
			b.WriteString("<br>")
		}
	}
	return b.String()
}

// plain renders plain_text: escaped, with line breaks.
func plain(s string) template.HTML {
	return template.HTML(strings.ReplaceAll(html.EscapeString(s), "\n", "<br>"))
}

// inline renders text outside <…>: Slack's &amp; &lt; &gt; are the
// characters, which are then escaped for HTML; the marks * _ ~ ` are not
// HTML-special, so the tags put around them cannot be forged.
func inline(s string) string {
	s = html.EscapeString(html.UnescapeString(s))
	s = reCode.ReplaceAllString(s, "<code>$1</code>")
	s = reBold.ReplaceAllString(s, "$1<strong>$2</strong>")
	s = reItalic.ReplaceAllString(s, "$1<em>$2</em>")
	s = reStrike.ReplaceAllString(s, "$1<del>$2</del>")
	s = reEmoji.ReplaceAllStringFunc(s, func(code string) string {
		if e, ok := emoji[strings.Trim(code, ":")]; ok {
			return e
		}
		return code
	})
	return s
}

// angle renders <…>: a link, a mention, a special mention or a date.
func angle(inner string, names func(string) string) string {
	target, label, hasLabel := strings.Cut(inner, "|")
	switch {
	case strings.HasPrefix(target, "@"):
		name := names(target[1:])
		if hasLabel {
			name = label
		}
		return `<span class="mention">@` + html.EscapeString(html.UnescapeString(name)) + `</span>`
	case strings.HasPrefix(target, "#"):
		name := names(target[1:])
		if hasLabel {
			name = label
		}
		return `<span class="mention">#` + html.EscapeString(html.UnescapeString(name)) + `</span>`
	case strings.HasPrefix(target, "!date^"):
		return `<time>` + html.EscapeString(html.UnescapeString(label)) + `</time>`
	case strings.HasPrefix(target, "!"):
		word, _, _ := strings.Cut(target[1:], "^")
		return `<span class="mention">@` + html.EscapeString(word) + `</span>`
	}
	href := html.UnescapeString(target)
	if !safeURL(href) {
		return html.EscapeString("<" + html.UnescapeString(inner) + ">")
	}
	if !hasLabel {
		label = target
	}
	return `<a href="` + html.EscapeString(href) + `" target="_blank" rel="noopener noreferrer">` + html.EscapeString(html.UnescapeString(label)) + `</a>`
}

func safeURL(u string) bool {
	l := strings.ToLower(u)
	return strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://") || strings.HasPrefix(l, "mailto:") || strings.HasPrefix(l, "tel:")
}
