package main

import "testing"

func TestParseConfig(t *testing.T) {
	t.Parallel()
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    config
		wantErr bool
	}{
		{"defaults", nil, nil, config{addr: "127.0.0.1:8090"}, false},
		{"environment", nil, map[string]string{
			"SLACK_STANDIN_ADDR": ":9000", "SLACK_STANDIN_SEED": "seed.json", "SLACK_SIGNING_SECRET": "s",
			"SLACK_CLIENT_ID": "id", "SLACK_CLIENT_SECRET": "cs", "SLACK_TOKEN_ROTATION": "true", "SLACK_STANDIN_APP_URL": "http://127.0.0.1:8080",
		}, config{addr: ":9000", seedPath: "seed.json", signingSecret: "s", clientID: "id", clientSecret: "cs", rotation: true, appURL: "http://127.0.0.1:8080"}, false},
		{"flags override the environment", []string{"-addr", ":9001", "-rotation=false"}, map[string]string{"SLACK_STANDIN_ADDR": ":9000", "SLACK_TOKEN_ROTATION": "1"}, config{addr: ":9001"}, false},
		{"rate limits off", []string{"-rate-limits=false"}, nil, config{addr: "127.0.0.1:8090", noRateLimits: true}, false},
		{"rate limits off by environment", nil, map[string]string{"SLACK_STANDIN_RATE_LIMITS": "false"}, config{addr: "127.0.0.1:8090", noRateLimits: true}, false},
		{"bad boolean", nil, map[string]string{"SLACK_TOKEN_ROTATION": "maybe"}, config{}, true},
		{"stray argument", []string{"serve"}, nil, config{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseConfig(tt.args, env(tt.env))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
