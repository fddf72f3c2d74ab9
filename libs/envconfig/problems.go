package envconfig

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
)

// Problems collects what is wrong with a configuration, each by the
// variable that set it, for a service's Validate: every problem is
// reported at once, sorted, and no value that may be a secret is repeated
// (only addresses and URLs are quoted).
type Problems struct{ errs []error }

// Add records a problem with variable name.
func (p *Problems) Add(name, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
}

// Check records err, if not nil, as a problem with variable name.
func (p *Problems) Check(name string, err error) {
	if err != nil {
		p.Add(name, "%v", err)
	}
}

// Required records name if value is empty.
func (p *Problems) Required(name, value string) {
	if value == "" {
		p.Add(name, "required")
	}
}

// Positive records each named duration or number that is not above zero.
func (p *Problems) Positive(name string, v int64) {
	if v <= 0 {
		p.Add(name, "must be positive")
	}
}

// HostPort records each address, by variable, that is not host:port.
func (p *Problems) HostPort(addrs map[string]string) {
	for name, addr := range addrs {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			p.Add(name, "%q is not host:port", addr)
		}
	}
}

// HTTPURL records each URL, by variable, that is not an absolute http(s)
// URL.
func (p *Problems) HTTPURL(urls map[string]string) {
	for name, v := range urls {
		if u, err := url.Parse(v); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			p.Add(name, "%q is not an http(s) URL", v)
		}
	}
}

// NATS records the problems of the NATS_URL and NATS_REPLICAS every service
// on the bus has.
func (p *Problems) NATS(url string, replicas int) {
	p.Required("NATS_URL", url)
	if replicas < 1 {
		p.Add("NATS_REPLICAS", "must be at least 1")
	}
}

// Err is every problem, sorted by variable, or nil.
func (p *Problems) Err() error {
	slices.SortFunc(p.errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(p.errs...)
}
