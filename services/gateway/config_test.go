package gateway

import (
	"strings"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/libs/service"
)

func TestConfigFromEnvDefaults(t *testing.T) {
	t.Parallel()
	l := envconfig.FromMap(map[string]string{
		"GATEWAY_STATE_KEY": strings.Repeat("s", 32), "INSTALL_TICKET_KEY": strings.Repeat("t", 32),
		"SLACK_SIGNING_SECRET": "x", "SLACK_CLIENT_ID": "1.2", "SLACK_CLIENT_SECRET": "s",
	})
	c := ConfigFromEnv(l)
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || c.TeamsAddr != "127.0.0.1:9101" || c.SlackAuthorizeURL != "https://slack.com/oauth/v2/authorize" ||
		c.MaxBody != 1<<20 || c.AckBudget != 2500*time.Millisecond {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestConfigValidateNamesEveryProblem(t *testing.T) {
	t.Parallel()
	c := Config{
		Connections: service.Connections{OpsAddr: "127.0.0.1:8081", NATSURL: "nats://x", NATSReplicas: 1},
		Addr:        "8080", PublicURL: "ftp://x", StateKey: "short-state-key",
		InstallTicketKey: "", SigningSecret: "", SlackAPIURL: "https://slack.com/api", SlackAuthorizeURL: "https://slack.com/oauth/v2/authorize",
		TeamsAddr: "127.0.0.1:9101", MaxBody: 10, AckBudget: 5 * time.Second,
	}
	err := c.Validate()
	if err == nil {
		t.Fatal("invalid configuration accepted")
	}
	for _, v := range []string{"GATEWAY_ADDR", "GATEWAY_PUBLIC_URL", "GATEWAY_STATE_KEY", "INSTALL_TICKET_KEY", "SLACK_SIGNING_SECRET",
		"SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET", "SLACK_API_URL", "GATEWAY_MAX_BODY_BYTES", "GATEWAY_ACK_BUDGET"} {
		if !strings.Contains(err.Error(), v) {
			t.Errorf("%s not named in %v", v, err)
		}
	}
	if strings.Contains(err.Error(), "short-state-key") {
		t.Errorf("a secret appears in %v", err)
	}
}
