package lifecycle

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmslack/crmslack/libs/envconfig"
)

type testConfig struct{ Port int }

func (c testConfig) Validate() error {
	if c.Port == 1 {
		return errors.New("PORT: 1 is reserved")
	}
	return nil
}

func TestMainExitCodes(t *testing.T) {
	t.Parallel()
	entry := func(runErr error) Entry[testConfig] {
		return Entry[testConfig]{
			Name: "svc",
			Load: func(l *envconfig.Loader) testConfig { return testConfig{Port: l.Int("PORT", 80, 0, 65535)} },
			Run: func(context.Context, testConfig, *slog.Logger, prometheus.Registerer) error {
				return runErr
			},
		}
	}
	cases := []struct {
		name string
		env  map[string]string
		run  error
		code int
		says string
	}{
		{"clean stop", nil, nil, 0, ""},
		{"service fails", nil, errors.New("nats gone"), 1, "svc stopped"},
		{"unparsable variable", map[string]string{"PORT": "x"}, nil, 2, "svc: configuration:\nPORT:"},
		{"invalid configuration", map[string]string{"PORT": "1"}, nil, 2, "1 is reserved"},
		{"bad log level", map[string]string{"LOG_LEVEL": "loud"}, nil, 2, "LOG_LEVEL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			code := entry(c.run).main(context.Background(), envconfig.FromMap(c.env), &stderr)
			if code != c.code || !strings.Contains(stderr.String(), c.says) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr.String(), c.code, c.says)
			}
		})
	}
}
