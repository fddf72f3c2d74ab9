package web

import (
	"net/url"
	"strings"
	"testing"
)

func TestSafeNext(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{"/workflows?rule=deal-won", "/workflows?rule=deal-won"},
		{"/signals", "/signals"},
		{"", "/teams"},
		{"https://evil.example/", "/teams"},
		{"//evil.example/", "/teams"},
		{"/\\evil.example/", "/teams"},
		{"/\t/evil.example/", "/teams"},
		{"/login?next=/x", "/teams"},
		{"javascript:alert(1)", "/teams"},
	} {
		if got := safeNext(c.in); got != c.want {
			t.Errorf("safeNext(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzSafeNext: whatever the query says, the redirect after sign-in stays
// on this console.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/teams", "//x", "/\\x", "/\t/x", "https://x", "/%2f/x", "/a?b=//c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		u, err := url.Parse(got)
		if err != nil || u.Host != "" || u.Scheme != "" || !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") || strings.ContainsAny(got, "\\\t\r\n") {
			t.Fatalf("safeNext(%q) = %q leaves the console", next, got)
		}
	})
}
