package signals

import (
	"strings"
	"testing"

	"github.com/crmslack/crmslack/libs/envconfig"
)

func TestConfigDefaultsAreValid(t *testing.T) {
	t.Parallel()
	env := envconfig.FromMap(nil)
	cfg := ConfigFromEnv(env)
	if err := env.Err(); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.GRPCAddr != "127.0.0.1:9107" || cfg.Window.String() != "2m0s" || cfg.Lanes != 16 {
		t.Fatalf("defaults: %+v", cfg)
	}
}

func TestConfigNamesTheBadVariable(t *testing.T) {
	t.Parallel()
	for name, vars := range map[string]map[string]string{
		"SIGNALS_GRPC_ADDR":    {"SIGNALS_GRPC_ADDR": "nope"},
		"CRM_BASE_URL":         {"CRM_BASE_URL": "ftp://crm"},
		"SIGNALS_STORM_WINDOW": {"SIGNALS_STORM_WINDOW": "2 minutes"},
		"SIGNALS_LANES":        {"SIGNALS_LANES": "0"},
	} {
		env := envconfig.FromMap(vars)
		cfg := ConfigFromEnv(env)
		err := env.Err()
		if err == nil {
			err = cfg.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%v: %v, want an error naming %s", vars, err, name)
		}
	}
}
