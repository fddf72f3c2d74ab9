package reminders

import (
	"strings"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/libs/service"
)

func TestConfigFromEnvDefaultsAreValid(t *testing.T) {
	t.Parallel()
	l := envconfig.FromMap(map[string]string{"REMINDERS_BUTTON_KEY": "0123456789abcdef0123456789abcdef"})
	cfg := ConfigFromEnv(l)
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Snooze != 10*time.Minute || cfg.LateAfter != time.Minute || cfg.GRPCAddr != "127.0.0.1:9106" {
		t.Errorf("defaults %+v", cfg)
	}
}

func TestValidateNamesEveryBadVariable(t *testing.T) {
	t.Parallel()
	cfg := Config{Connections: service.Connections{NATSURL: "", NATSReplicas: 0, MongoURI: "mongodb://x", Database: "r", GRPCAddr: "nope", OpsAddr: "127.0.0.1:1"},
		CRMBaseURL: "ftp://crm", Snooze: 0, LateAfter: -time.Second, ButtonKey: "short"}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, v := range []string{"NATS_URL", "NATS_REPLICAS", "REMINDERS_GRPC_ADDR", "CRM_BASE_URL", "REMINDERS_SNOOZE", "REMINDERS_LATE_AFTER", "REMINDERS_BUTTON_KEY"} {
		if !strings.Contains(err.Error(), v) {
			t.Errorf("error does not name %s: %v", v, err)
		}
	}
}
