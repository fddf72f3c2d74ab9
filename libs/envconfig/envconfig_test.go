package envconfig

import (
	"strings"
	"testing"
	"time"
)

func TestLoaderCollectsEveryProblem(t *testing.T) {
	t.Parallel()
	l := FromMap(map[string]string{
		"PORT":    "http",
		"TIMEOUT": "5",
		"RETRIES": "99",
		"DEBUG":   "maybe",
		"SECRET":  "short",
		"NATS":    "ftp://x",
		"EMPTY":   "   ",
	})
	l.Int("PORT", 80, 1, 65535)
	l.Duration("TIMEOUT", time.Second, 0, time.Minute)
	l.Int("RETRIES", 3, 1, 10)
	l.Bool("DEBUG", false)
	l.Secret("SECRET", 16)
	l.URL("NATS", "", "nats", "tls")
	l.Required("EMPTY")
	err := l.Err()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"PORT:", "TIMEOUT:", "RETRIES:", "DEBUG:", "SECRET: too short", "NATS: scheme", "EMPTY: required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "short\"") {
		t.Errorf("secret value leaked: %v", err)
	}
}

func TestLoaderDefaultsAndValues(t *testing.T) {
	t.Parallel()
	l := FromMap(map[string]string{"A": "7", "B": "250ms", "C": "true", "D": "nats://u:p@h:4222"})
	if got := l.Int("A", 1, 0, 10); got != 7 {
		t.Errorf("Int = %d", got)
	}
	if got := l.Duration("B", 0, 0, time.Second); got != 250*time.Millisecond {
		t.Errorf("Duration = %s", got)
	}
	if !l.Bool("C", false) {
		t.Error("Bool = false")
	}
	if got := l.URL("D", "", "nats"); got != "nats://u:p@h:4222" {
		t.Errorf("URL = %s", got)
	}
	if got := l.String("UNSET", "def"); got != "def" {
		t.Errorf("String default = %s", got)
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestURLErrorRedactsCredentials(t *testing.T) {
	t.Parallel()
	l := FromMap(map[string]string{"DB": "mongodb://user:hunter2@/x"})
	l.URL("DB", "", "mongodb")
	if err := l.Err(); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("want a redacted error, got %v", err)
	}
}
