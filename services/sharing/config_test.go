package sharing

import (
	"strings"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/libs/service"
)

func TestConfigFromEnvDefaults(t *testing.T) {
	t.Parallel()
	l := envconfig.FromMap(map[string]string{"SHARE_BUTTON_KEY": strings.Repeat("k", 32)})
	c := ConfigFromEnv(l)
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := Config{
		Connections: service.Connections{
			NATSURL: "nats://127.0.0.1:4222", NATSReplicas: 1, MongoURI: "mongodb://127.0.0.1:27017", Database: "sharing",
			GRPCAddr: "127.0.0.1:9104", OpsAddr: "127.0.0.1:9204",
		},
		TeamsAddr: "127.0.0.1:9101", QueryAddr: "127.0.0.1:9103", RequestMaxAge: time.Hour,
	}
	if c.NATSURL != want.NATSURL || c.NATSReplicas != want.NATSReplicas || c.MongoURI != want.MongoURI || c.Database != want.Database ||
		c.GRPCAddr != want.GRPCAddr || c.OpsAddr != want.OpsAddr || c.TeamsAddr != want.TeamsAddr || c.QueryAddr != want.QueryAddr ||
		c.CRMBaseURL != "" || c.RequestMaxAge != want.RequestMaxAge {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestConfigValidateNamesEveryProblem(t *testing.T) {
	t.Parallel()
	l := envconfig.FromMap(map[string]string{
		"SHARING_GRPC_ADDR": "9104", "QUERY_ADDR": "query", "NATS_REPLICAS": "9", "SHARING_REQUEST_MAX_AGE": "1s",
		"CRM_BASE_URL": "ftp://crm",
	})
	c := ConfigFromEnv(l)
	loaderErr := l.Err()
	if loaderErr == nil {
		t.Fatal("loader accepted out-of-range values")
	}
	for _, v := range []string{"NATS_REPLICAS", "SHARING_REQUEST_MAX_AGE", "CRM_BASE_URL"} {
		if !strings.Contains(loaderErr.Error(), v) {
			t.Errorf("loader does not name %s: %v", v, loaderErr)
		}
	}
	c.CRMBaseURL, c.NATSURL, c.Database = "crm.example", "", ""
	err := c.Validate()
	if err == nil {
		t.Fatal("invalid configuration accepted")
	}
	for _, v := range []string{"SHARING_GRPC_ADDR", "QUERY_ADDR", "CRM_BASE_URL", "NATS_URL", "SHARING_MONGODB_DATABASE", "SHARE_BUTTON_KEY"} {
		if !strings.Contains(err.Error(), v) {
			t.Errorf("%s not named in %v", v, err)
		}
	}
}
