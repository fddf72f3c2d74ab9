package slackstandin

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"zero rate", Config{RateLimits: RateLimits{Methods: map[string]Limit{"users.info": {Burst: 1}}}}, `Methods["users.info"]`},
		{"unknown method", Config{RateLimits: RateLimits{Methods: map[string]Limit{"chat.nope": Tier1}}}, "unknown method"},
		{"zero burst", Config{RateLimits: RateLimits{PostMessagePerChannel: Limit{Rate: 1}}}, "PostMessagePerChannel"},
		{"short token life", Config{App: AppConfig{TokenExpiresIn: time.Millisecond}}, "TokenExpiresIn"},
		{"public URL", Config{PublicURL: "ftp://x"}, "PublicURL"},
		{"app URL scheme", Config{AppURL: "ftp://x"}, "AppURL"},
		{"app URL without host", Config{AppURL: "http://"}, "AppURL"},
		{"broken seed", Config{Seed: &Seed{}}, "no workspace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestParallelServersAreIndependent(t *testing.T) {
	t.Parallel()
	a, _ := startQuiet(t)
	b, _ := startQuiet(t)
	if a.URL() == b.URL() {
		t.Fatal("two servers share a URL")
	}
	tok := a.IssueBotToken(acme)
	wantOK(t, callForm(t, a, "auth.test", tok, nil))
	wantError(t, callForm(t, b, "auth.test", tok, nil), "invalid_auth")
}

func TestStartAndClose(t *testing.T) {
	t.Parallel()
	srv, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(""); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(""); err == nil {
		t.Fatal("a second Start must fail")
	}
	u := srv.URL()
	srv.Close()
	srv.Close()
	if _, err := http.Get(u + "/_standin/stats"); err == nil {
		t.Fatal("the server still answers after Close")
	}
}

func TestHandlerServedByCaller(t *testing.T) {
	t.Parallel()
	srv, err := New(Config{PublicURL: "https://slack.test", RateLimits: RateLimits{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	if got := srv.NewResponseURL(acme, sales, alice); !strings.HasPrefix(got, "https://slack.test/commands/"+acme+"/") {
		t.Fatalf("response URL %q", got)
	}
	req, _ := http.NewRequestWithContext(testContext(t), http.MethodPost, hs.URL+"/api/files.getUploadURLExternal?filename=a&length=1", nil)
	req.Header.Set("Authorization", "Bearer "+srv.IssueBotToken(acme))
	a := do(t, req)
	wantOK(t, a)
	if u := a.body["upload_url"].(string); !strings.HasPrefix(u, hs.URL+"/upload/v1/") {
		t.Fatalf("the upload URL uses the host the client called: %s", u)
	}
}
