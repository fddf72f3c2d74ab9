package logging

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/libs/tracectx"
)

func TestSecretsNeverReachTheLog(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := New(&buf, Config{Level: slog.LevelDebug, JSON: true})
	const tok = "xoxb-1234-5678-abcdefABCDEF"
	log.Info("calling slack", "bot_token", tok, "client_secret", "s3cr3t-value", "note", "token is "+tok)
	log.Error("failed", "err", errors.New("auth with "+tok+" failed"))
	log.Info("rotated", "detail", "xoxe.xoxb-1-MTIz and xoxe-1-My0x")
	out := buf.String()
	for _, leak := range []string{tok, "s3cr3t-value", "xoxe.xoxb-1-MTIz", "xoxe-1-My0x"} {
		if strings.Contains(out, leak) {
			t.Errorf("log leaks %q:\n%s", leak, out)
		}
	}
	if !strings.Contains(out, "calling slack") || !strings.Contains(out, redacted) {
		t.Errorf("log lost its message or redaction marker:\n%s", out)
	}
}

func TestTraceIDOnEveryLine(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := New(&buf, Config{JSON: false})
	tc := tracectx.New()
	log.InfoContext(tracectx.WithTrace(context.Background(), tc), "hello")
	if !strings.Contains(buf.String(), tc.TraceIDString()) {
		t.Fatalf("no trace id in %q", buf.String())
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	l := envconfig.FromMap(map[string]string{"LOG_LEVEL": "loud", "LOG_FORMAT": "xml"})
	ConfigFromEnv(l)
	err := l.Err()
	if err == nil || !strings.Contains(err.Error(), "LOG_LEVEL") || !strings.Contains(err.Error(), "LOG_FORMAT") {
		t.Fatalf("err = %v", err)
	}
	l = envconfig.FromMap(map[string]string{"LOG_LEVEL": "debug", "LOG_FORMAT": "text"})
	c := ConfigFromEnv(l)
	if l.Err() != nil || c.Level != slog.LevelDebug || c.JSON {
		t.Fatalf("config = %+v, %v", c, l.Err())
	}
}
