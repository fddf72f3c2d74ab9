package sandbox

import (
	"strings"
	"testing"
)

func names(id string) string { return map[string]string{"U1": "bob"}[id] }

func TestMrkdwn(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"*Deal won* by _Bob_", "<strong>Deal won</strong> by <em>Bob</em>"},
		{"a&lt;b &amp; <script>", "a&lt;b &amp; &lt;script&gt;"},
		{"<https://crm.example/x?a=1&amp;b=2|Open in CRM>", `<a href="https://crm.example/x?a=1&amp;b=2" target="_blank" rel="noopener noreferrer">Open in CRM</a>`},
		{"<javascript:alert(1)|x>", "&lt;javascript:alert(1)|x&gt;"},
		{"hi <@U1> and <!here>", `hi <span class="mention">@bob</span> and <span class="mention">@here</span>`},
		{"<!date^1700000000^{date}|Nov 14>", "<time>Nov 14</time>"},
		{"first_last@example.com `code`\nline", "first_last@example.com <code>code</code><br>line"},
		{":telephone_receiver: *Missed call*\n&gt; left no message\n:unknown:", "📞 <strong>Missed call</strong><blockquote>left no message</blockquote>:unknown:"},
		{`"><img src=x onerror=1>`, "&#34;&gt;&lt;img src=x onerror=1&gt;"},
	} {
		if got := string(mrkdwn(tt.in, names)); got != tt.want {
			t.Errorf("mrkdwn(%q)\n got %s\nwant %s", tt.in, got, tt.want)
		}
	}
}

// FuzzMrkdwn: whatever the text, the only tags are the renderer's own.
func FuzzMrkdwn(f *testing.F) {
	for _, s := range []string{"*a*", "<http://x|y>", "<@U1>", "<!date^1^x|y>", "<<>>", "&lt;b&gt;"} {
		f.Add(s)
	}
	allowed := []string{"<strong>", "</strong>", "<em>", "</em>", "<del>", "</del>", "<code>", "</code>", "<br>", "<blockquote>", "</blockquote>", "<time>", "</time>", `<span class="mention">`, "</span>", "</a>"}
	f.Fuzz(func(t *testing.T, s string) {
		out := string(mrkdwn(s, names))
		for _, a := range allowed {
			out = strings.ReplaceAll(out, a, "")
		}
		for {
			i := strings.Index(out, `<a href="`)
			if i < 0 {
				break
			}
			j := strings.Index(out[i:], `rel="noopener noreferrer">`)
			if j < 0 {
				t.Fatalf("unterminated link in %q", out)
			}
			href := out[i+len(`<a href="`) : i+j]
			if strings.ContainsAny(href, "<>") {
				t.Fatalf("link %q carries markup", href)
			}
			out = out[:i] + out[i+j+len(`rel="noopener noreferrer">`):]
		}
		if strings.ContainsAny(out, "<>") {
			t.Fatalf("mrkdwn(%q) leaves markup: %q", s, out)
		}
	})
}
