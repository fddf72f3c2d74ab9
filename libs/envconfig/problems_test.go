package envconfig

import (
	"errors"
	"testing"
)

func TestProblems(t *testing.T) {
	t.Parallel()
	var p Problems
	p.NATS("", 0)
	p.HostPort(map[string]string{"X_ADDR": "nope", "Y_ADDR": "127.0.0.1:1"})
	p.HTTPURL(map[string]string{"X_URL": "ftp://h", "Y_URL": "https://h/"})
	p.Required("X_SECRET", "")
	p.Positive("X_TTL", 0)
	p.Check("X_KEY", errors.New("too short"))
	p.Check("Y_KEY", nil)
	want := "NATS_REPLICAS: must be at least 1\nNATS_URL: required\nX_ADDR: \"nope\" is not host:port\n" +
		"X_KEY: too short\nX_SECRET: required\nX_TTL: must be positive\nX_URL: \"ftp://h\" is not an http(s) URL"
	if got := p.Err(); got == nil || got.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", got, want)
	}
	var none Problems
	if err := none.Err(); err != nil {
		t.Fatalf("no problems: %v", err)
	}
}
