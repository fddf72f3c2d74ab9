package slacktext_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/crmslack/crmslack/libs/slacktext"
)

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"short", 10, "short"},
		{"<!channel> & <https://x|y>", 100, "&lt;!channel&gt; &amp; &lt;https://x|y&gt;"},
		{"abcdef", 4, "abc…"},
		{"ab&cd", 4, "ab…"},      // "ab&a" would split "&amp;"
		{"ab&cd", 8, "ab&amp;…"}, // the entity fits whole
		{"ééééé", 3, "éé…"},
		{"a\xffb", 10, "a\uFFFDb"},
		{"abc", 0, "…"},
	} {
		if got := slacktext.Clip(tc.in, tc.max); got != tc.want {
			t.Errorf("Clip(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

func TestPlain(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"Tom & Jerry", 20, "Tom & Jerry"},
		{"Tom & Jerry", 6, "Tom &…"},
		{"a\xffb", 10, "a\uFFFDb"},
	} {
		if got := slacktext.Plain(tc.in, tc.max); got != tc.want {
			t.Errorf("Plain(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

// FuzzClip: whatever the CRM sends, the result is valid UTF-8, within the
// limit, holds no raw markup and no cut entity.
func FuzzClip(f *testing.F) {
	for _, s := range []string{"", "a&b", "<@U1>", "ééé&&&<<<", "\xff\xfe"} {
		f.Add(s, 3)
	}
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max < 1 || max > 5000 {
			return
		}
		got := slacktext.Clip(s, max)
		if !utf8.ValidString(got) || utf8.RuneCountInString(got) > max {
			t.Fatalf("Clip(%q, %d) = %q: invalid or too long", s, max, got)
		}
		if strings.ContainsAny(got, "<>") {
			t.Fatalf("Clip(%q, %d) = %q: raw markup", s, max, got)
		}
		body := strings.TrimSuffix(got, slacktext.Ellipsis)
		for i := strings.IndexByte(body, '&'); i >= 0; i = strings.IndexByte(body, '&') {
			rest := body[i:]
			if !strings.HasPrefix(rest, "&amp;") && !strings.HasPrefix(rest, "&lt;") && !strings.HasPrefix(rest, "&gt;") {
				t.Fatalf("Clip(%q, %d) = %q: cut entity", s, max, got)
			}
			body = rest[1:]
		}
	})
}
