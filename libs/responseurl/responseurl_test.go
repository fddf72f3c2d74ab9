package responseurl_test

import (
	"errors"
	"testing"

	"github.com/crmslack/crmslack/libs/responseurl"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	local, err := responseurl.New(responseurl.SlackBase, "http://127.0.0.1:8090")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		policy *responseurl.Policy
		url    string
		ok     bool
	}{
		{responseurl.Slack(), "https://hooks.slack.com/commands/T0ACME0001/1234/abcdef", true},
		{responseurl.Slack(), "https://hooks.slack.com/actions/T0ACME0001/1234/abcdef", true},
		{responseurl.Slack(), "https://HOOKS.slack.com/actions/T0ACME0001/1234/abcdef", true},
		{responseurl.Slack(), "https://hooks.slack.com/services/T0ACME0001/B0/abcdef", false}, // an incoming webhook
		{responseurl.Slack(), "https://hooks.slack.com/commands/", false},
		{responseurl.Slack(), "https://hooks.slack.com/", false},
		{responseurl.Slack(), "http://hooks.slack.com/commands/T/1/a", false},
		{responseurl.Slack(), "https://hooks.slack.com.evil.example/commands/T/1/a", false},
		{responseurl.Slack(), "https://evil.example/commands/T/1/a", false},
		{responseurl.Slack(), "https://user:pw@hooks.slack.com/commands/T/1/a", false},
		{responseurl.Slack(), "https://hooks.slack.com/commands/../services/T/B/x", false},
		{responseurl.Slack(), "https://hooks.slack.com/commands/%2e%2e/services/T/B/x", false},
		{responseurl.Slack(), "https://hooks.slack.com/commands/T/1/a?x=1", false},
		{responseurl.Slack(), "hooks.slack.com/commands/T/1/a", false},
		{responseurl.Slack(), "", false},
		{responseurl.Slack(), "http://127.0.0.1:8090/commands/T/1/a", false},
		{local, "http://127.0.0.1:8090/commands/T/1/a", true},
		{local, "http://127.0.0.1:8090/actions/T/1/a", true},
		{local, "http://127.0.0.1:8090/api/chat.postMessage", false},
		{local, "https://127.0.0.1:8090/commands/T/1/a", false},
		{local, "http://127.0.0.1:9999/commands/T/1/a", false},
	}
	for _, c := range cases {
		err := c.policy.Check(c.url)
		if (err == nil) != c.ok {
			t.Errorf("Check(%q) = %v, want ok=%v", c.url, err, c.ok)
		}
		if err != nil && !errors.Is(err, responseurl.ErrNotAllowed) {
			t.Errorf("Check(%q) = %v, not ErrNotAllowed", c.url, err)
		}
	}
}

func TestNewRefusesBadBases(t *testing.T) {
	t.Parallel()
	for _, b := range []string{"hooks.slack.com", "ftp://hooks.slack.com", "https://u:p@hooks.slack.com", "https://hooks.slack.com/?x=1"} {
		if _, err := responseurl.New(b); err == nil {
			t.Errorf("New(%q) accepted", b)
		}
	}
	if _, err := responseurl.New(); err == nil {
		t.Error("New() with no base accepted")
	}
}

func FuzzCheck(f *testing.F) {
	f.Add("https://hooks.slack.com/commands/T0ACME0001/1234/abcdef")
	f.Add("https://hooks.slack.com/services/T/B/x")
	p := responseurl.Slack()
	f.Fuzz(func(t *testing.T, raw string) {
		_ = p.Check(raw) // must not panic
	})
}
