// Package responseurl decides whether a response_url is one of Slack's
// reply endpoints, so CRM data is never sent to a URL a payload merely
// claims is Slack's. Slack's replies live at
// https://hooks.slack.com/commands/… (slash commands) and
// https://hooks.slack.com/actions/… (interactions); the same host also
// serves incoming webhooks (/services/…), which must not be accepted.
package responseurl

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// SlackBase is where Slack's response URLs live.
const SlackBase = "https://hooks.slack.com"

// replyPaths are the path prefixes of Slack's reply endpoints under a base.
var replyPaths = []string{"/commands/", "/actions/"}

// ErrNotAllowed wraps every refusal.
var ErrNotAllowed = errors.New("response_url is not a Slack reply endpoint")

// base is one origin (scheme and host) with an optional path prefix.
type base struct {
	scheme, host, path string
}

// Policy is a set of bases whose /commands/ and /actions/ paths are
// allowed. The zero value allows nothing; use New.
type Policy struct {
	bases []base
}

// New returns the policy allowing the reply paths under each base URL,
// e.g. "https://hooks.slack.com" or a local stand-in's
// "http://127.0.0.1:8090".
func New(bases ...string) (*Policy, error) {
	p := &Policy{}
	for _, raw := range bases {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("response URL base %q: must be an http(s) origin such as %s", raw, SlackBase)
		}
		p.bases = append(p.bases, base{scheme: u.Scheme, host: strings.ToLower(u.Host), path: strings.TrimSuffix(u.Path, "/")})
	}
	if len(p.bases) == 0 {
		return nil, errors.New("no response URL base")
	}
	return p, nil
}

// Slack is the production policy: hooks.slack.com only.
func Slack() *Policy {
	p, _ := New(SlackBase)
	return p
}

// Check returns nil when raw is a reply endpoint under one of the bases.
func (p *Policy) Check(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || u.Opaque != "":
		return fmt.Errorf("%w: not an absolute URL", ErrNotAllowed)
	case u.User != nil:
		return fmt.Errorf("%w: the URL carries credentials", ErrNotAllowed)
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%w: a query or fragment", ErrNotAllowed)
	case strings.Contains(u.EscapedPath(), "%") || strings.Contains(u.Path, ".."):
		return fmt.Errorf("%w: an escaped or relative path", ErrNotAllowed)
	}
	host := strings.ToLower(u.Host)
	for _, b := range p.bases {
		if u.Scheme != b.scheme || host != b.host {
			continue
		}
		for _, rp := range replyPaths {
			if rest, ok := strings.CutPrefix(u.Path, b.path+rp); ok && rest != "" {
				return nil
			}
		}
		return fmt.Errorf("%w: %s is not under %s/commands/ or %s/actions/", ErrNotAllowed, u.Path, b.path, b.path)
	}
	return fmt.Errorf("%w: %s://%s is not an allowed host", ErrNotAllowed, u.Scheme, u.Host)
}
