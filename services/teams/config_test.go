package teams

import (
	"strings"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/envconfig"
)

const tokenKeys = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

func TestConfigFromEnvDefaults(t *testing.T) {
	t.Parallel()
	l := envconfig.FromMap(map[string]string{
		"TEAMS_TOKEN_KEYS": tokenKeys, "INSTALL_TICKET_KEY": strings.Repeat("t", 32),
		"SLACK_CLIENT_ID": "1.2", "SLACK_CLIENT_SECRET": "s",
	})
	c := ConfigFromEnv(l)
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.GRPCAddr != "127.0.0.1:9101" || c.Database != "teams" || c.SlackAPIURL != "https://slack.com/api/" ||
		c.RefreshInterval != time.Minute || c.NATSReplicas != 1 {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestConfigValidateNamesEveryProblem(t *testing.T) {
	t.Parallel()
	l := envconfig.FromMap(map[string]string{
		"TEAMS_TOKEN_KEYS": "k1:c2hvcnQ=", "INSTALL_TICKET_KEY": "short-secret-value",
		"SLACK_API_URL": "https://slack.com/api", "TEAMS_GRPC_ADDR": "9101",
	})
	c := ConfigFromEnv(l)
	missing := l.Err()
	if missing == nil || !strings.Contains(missing.Error(), "SLACK_CLIENT_ID") || !strings.Contains(missing.Error(), "SLACK_CLIENT_SECRET") {
		t.Fatalf("loader: %v", missing)
	}
	err := c.Validate()
	if err == nil {
		t.Fatal("invalid configuration accepted")
	}
	for _, v := range []string{"TEAMS_TOKEN_KEYS", "INSTALL_TICKET_KEY", "SLACK_API_URL", "TEAMS_GRPC_ADDR", "SLACK_CLIENT_ID"} {
		if !strings.Contains(err.Error(), v) {
			t.Errorf("%s not named in %v", v, err)
		}
	}
	if strings.Contains(err.Error(), "short-secret-value") || strings.Contains(err.Error(), "c2hvcnQ") {
		t.Errorf("a secret appears in %v", err)
	}
}
