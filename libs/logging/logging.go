// Package logging builds the slog logger every service uses: JSON or text,
// the trace id on every line, and a last line of defence that blanks anything
// that looks like a secret, whatever key a careless call site used.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"

	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/libs/tracectx"
)

// Config selects level and format.
type Config struct {
	// Level is LOG_LEVEL: debug, info, warn or error. Default info.
	Level slog.Level
	// JSON is LOG_FORMAT=json (the default); text otherwise.
	JSON bool
}

// ConfigFromEnv reads LOG_LEVEL and LOG_FORMAT.
func ConfigFromEnv(l *envconfig.Loader) Config {
	c := Config{JSON: true}
	if err := c.Level.UnmarshalText([]byte(l.String("LOG_LEVEL", "info"))); err != nil {
		l.Fail("LOG_LEVEL", "want debug, info, warn or error")
	}
	switch f := l.String("LOG_FORMAT", "json"); f {
	case "json":
	case "text":
		c.JSON = false
	default:
		l.Fail("LOG_FORMAT", "%q is not json or text", f)
	}
	return c
}

// New returns a logger writing to w.
func New(w io.Writer, c Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.Level, ReplaceAttr: redact}
	var h slog.Handler
	if c.JSON {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(tracectx.LogHandler(h))
}

const redacted = "[redacted]"

// secretKey matches attribute keys that name secrets.
var secretKey = regexp.MustCompile(`(?i)(token|secret|password|authorization|signature|cookie|api_?key)`)

// slackToken matches Slack tokens (xoxb-, xoxp-, xoxe.xoxb-, xoxe-1- ...).
var slackToken = regexp.MustCompile(`xox[abeprs][.-][A-Za-z0-9.-]+`)

func redact(_ []string, a slog.Attr) slog.Attr {
	if secretKey.MatchString(a.Key) && a.Value.Kind() != slog.KindGroup {
		return slog.String(a.Key, redacted)
	}
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); strings.Contains(s, "xox") {
			return slog.String(a.Key, slackToken.ReplaceAllString(s, redacted))
		}
	case slog.KindAny:
		if err, ok := a.Value.Any().(error); ok {
			if s := err.Error(); strings.Contains(s, "xox") {
				return slog.String(a.Key, slackToken.ReplaceAllString(s, redacted))
			}
		}
		if s, ok := a.Value.Any().(fmt.Stringer); ok {
			if v := s.String(); strings.Contains(v, "xox") {
				return slog.String(a.Key, slackToken.ReplaceAllString(v, redacted))
			}
		}
	}
	return a
}
