// Package envconfig reads a service's configuration from environment
// variables. A Loader collects every problem instead of stopping at the first,
// so a misconfigured deployment is told everything that is wrong at once, each
// problem naming its variable.
package envconfig

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Loader reads variables through a lookup function and records what went
// wrong.
type Loader struct {
	lookup func(string) (string, bool)
	errs   []error
}

// New reads the process environment.
func New() *Loader { return &Loader{lookup: os.LookupEnv} }

// FromMap reads a fixed set of variables; tests use it.
func FromMap(m map[string]string) *Loader {
	return &Loader{lookup: func(k string) (string, bool) { v, ok := m[k]; return v, ok }}
}

// Lookup gives direct access to a variable, for the rare case a caller needs
// to know whether it was set at all.
func (l *Loader) Lookup(name string) (string, bool) {
	v, ok := l.lookup(name)
	if !ok || strings.TrimSpace(v) == "" {
		return "", false
	}
	return strings.TrimSpace(v), true
}

// Fail records a problem found by the caller's own validation.
func (l *Loader) Fail(name, format string, args ...any) {
	l.errs = append(l.errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
}

// Err returns every recorded problem, joined, or nil.
func (l *Loader) Err() error { return errors.Join(l.errs...) }

// String returns the variable or def when unset.
func (l *Loader) String(name, def string) string {
	if v, ok := l.Lookup(name); ok {
		return v
	}
	return def
}

// Required returns the variable and records a problem when it is unset.
func (l *Loader) Required(name string) string {
	v, ok := l.Lookup(name)
	if !ok {
		l.Fail(name, "required but not set")
	}
	return v
}

// Int returns the variable as an integer in [lo, hi], or def when unset.
func (l *Loader) Int(name string, def, lo, hi int) int {
	v, ok := l.Lookup(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		l.Fail(name, "%q is not a whole number", v)
		return def
	}
	if n < lo || n > hi {
		l.Fail(name, "%d is outside %d..%d", n, lo, hi)
		return def
	}
	return n
}

// Duration returns the variable as a Go duration ("1.5s", "10m") in [lo, hi].
func (l *Loader) Duration(name string, def, lo, hi time.Duration) time.Duration {
	v, ok := l.Lookup(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		l.Fail(name, "%q is not a duration such as 500ms or 2m", v)
		return def
	}
	if d < lo || d > hi {
		l.Fail(name, "%s is outside %s..%s", d, lo, hi)
		return def
	}
	return d
}

// Bool returns the variable as a boolean (true/false/1/0).
func (l *Loader) Bool(name string, def bool) bool {
	v, ok := l.Lookup(name)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		l.Fail(name, "%q is not true or false", v)
		return def
	}
	return b
}

// URL returns the variable as an absolute URL with one of the schemes.
func (l *Loader) URL(name, def string, schemes ...string) string {
	v := l.String(name, def)
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" {
		l.Fail(name, "%q is not an absolute URL", redactURL(v))
		return v
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return v
		}
	}
	l.Fail(name, "scheme %q is not one of %s", u.Scheme, strings.Join(schemes, ", "))
	return v
}

// Secret returns a secret. Problems name the variable, never the value.
func (l *Loader) Secret(name string, minLen int) string {
	v, ok := l.Lookup(name)
	if !ok {
		return ""
	}
	if len(v) < minLen {
		l.Fail(name, "too short: at least %d characters", minLen)
	}
	return v
}

// redactURL drops credentials from a URL before it appears in an error.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	u.User = url.User("***")
	return u.String()
}
