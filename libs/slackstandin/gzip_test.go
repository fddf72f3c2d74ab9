package slackstandin

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestRepliesCompressedWhenAccepted: as Slack does, a Web API reply is
// gzip-compressed when the request accepts it, and plain when it does not.
func TestRepliesCompressedWhenAccepted(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	token := srv.IssueBotToken(acme)
	for _, c := range []struct {
		accept string
		gzip   bool
	}{
		{"", false},
		{"gzip", true},
		{"deflate, GZIP;q=0.5", true},
		{"identity", false},
	} {
		form := url.Values{"channel": {sales}, "text": {"hello"}}
		req, err := http.NewRequestWithContext(testContext(t), http.MethodPost, srv.URL()+"/api/chat.postMessage", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+token)
		if c.accept != "" {
			req.Header.Set("Accept-Encoding", c.accept)
		}
		// The transport itself: a client left to ask for gzip would undo it.
		resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		var body io.Reader = resp.Body
		if got := resp.Header.Get("Content-Encoding") == "gzip"; got != c.gzip {
			t.Fatalf("Accept-Encoding %q: Content-Encoding %q", c.accept, resp.Header.Get("Content-Encoding"))
		}
		if c.gzip {
			zr, err := gzip.NewReader(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			body = zr
		}
		var reply struct {
			OK bool   `json:"ok"`
			TS string `json:"ts"`
		}
		err = json.NewDecoder(body).Decode(&reply)
		_ = resp.Body.Close()
		if err != nil || !reply.OK || reply.TS == "" {
			t.Fatalf("Accept-Encoding %q: reply %+v, %v", c.accept, reply, err)
		}
	}
}
