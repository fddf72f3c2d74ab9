package workflows

import (
	"strings"
	"testing"

	"github.com/crmslack/crmslack/libs/envconfig"
)

func TestConfigDefaultsAreValid(t *testing.T) {
	t.Parallel()
	l := envconfig.FromMap(map[string]string{})
	cfg := ConfigFromEnv(l)
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if cfg.GRPCAddr != "127.0.0.1:9105" || cfg.OpsAddr != "127.0.0.1:9205" || cfg.Database != "workflows" {
		t.Errorf("defaults: %+v", cfg)
	}
}

func TestConfigNamesEveryBadVariable(t *testing.T) {
	t.Parallel()
	l := envconfig.FromMap(map[string]string{"CRM_BASE_URL": "ftp://x"})
	ConfigFromEnv(l)
	if err := l.Err(); err == nil || !strings.Contains(err.Error(), "CRM_BASE_URL") {
		t.Errorf("CRM_BASE_URL ftp://x: %v", err)
	}
	cfg := ConfigFromEnv(envconfig.FromMap(map[string]string{"WORKFLOWS_GRPC_ADDR": "nope", "TEAMS_ADDR": "host-without-port"}))
	err := cfg.Validate()
	for _, name := range []string{"WORKFLOWS_GRPC_ADDR", "TEAMS_ADDR"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%v does not name %s", err, name)
		}
	}
}
