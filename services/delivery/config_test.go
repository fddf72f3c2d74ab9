package delivery_test

import (
	"strings"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/envconfig"

	"github.com/crmslack/crmslack/services/delivery"
	"github.com/crmslack/crmslack/services/delivery/internal/pacing"
)

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	l := envconfig.FromMap(map[string]string{})
	c := delivery.ConfigFromEnv(l)
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if c.GRPCAddr != "127.0.0.1:9102" || c.SlackAPIURL != "https://slack.com/api/" || c.ChannelRate != 1 || c.ChannelBurst != 3 ||
		c.AckWait != 30*time.Second || c.Unconfirmed != "fail" || c.LedgerTTL != 7*24*time.Hour || c.ResponseURLHosts[0] != "hooks.slack.com" ||
		c.Partitions != 8 || c.LeaseTTL != 6*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestConfigNamesEveryBadVariable(t *testing.T) {
	t.Parallel()
	l := envconfig.FromMap(map[string]string{
		"DELIVERY_CHANNEL_RATE":   "fast",
		"DELIVERY_TIER_OVERRIDES": "chat.update=lots",
		"DELIVERY_ACK_WAIT":       "soon",
		"DELIVERY_PARTITIONS":     "0",
		"DELIVERY_LEASE_TTL":      "100ms",
	})
	delivery.ConfigFromEnv(l)
	err := l.Err()
	for _, name := range []string{"DELIVERY_CHANNEL_RATE", "DELIVERY_TIER_OVERRIDES", "DELIVERY_ACK_WAIT", "DELIVERY_PARTITIONS", "DELIVERY_LEASE_TTL"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
	c := delivery.ConfigFromEnv(envconfig.FromMap(map[string]string{
		"SLACK_API_URL":        "https://slack.com/api",
		"DELIVERY_UNCONFIRMED": "maybe",
		"DELIVERY_LEDGER_TTL":  "1h",
		"DELIVERY_GRPC_ADDR":   "nowhere",
	}))
	err = c.Validate()
	for _, name := range []string{"SLACK_API_URL", "DELIVERY_UNCONFIRMED", "DELIVERY_LEDGER_TTL", "DELIVERY_GRPC_ADDR"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
}

func TestParseTierOverrides(t *testing.T) {
	t.Parallel()
	got, err := delivery.ParseTierOverrides("chat.postMessage=600/min, users.lookupByEmail=5/s:2, conversations.history=off")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]pacing.Limit{
		"chat.postMessage":      {Rate: 10, Burst: 600},
		"users.lookupByEmail":   {Rate: 5, Burst: 2},
		"conversations.history": pacing.Unlimited,
	}
	for m, l := range want {
		if got[m] != l {
			t.Errorf("%s = %v, want %v", m, got[m], l)
		}
	}
	for _, bad := range []string{"x", "m=1/h", "m=-1/s", "m=1/s:0", "=1/s"} {
		if _, err := delivery.ParseTierOverrides(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
