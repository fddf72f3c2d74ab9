package slackstandin

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzReadActRequest: whatever a person posts to /_standin/slash or /click,
// reading it either succeeds or is refused with a 400, never a panic.
func FuzzReadActRequest(f *testing.F) {
	f.Add("application/json", `{"team":"T0ACME0001","channel":"sales","user":"bob@acme.example","text":"leads"}`)
	f.Add("application/x-www-form-urlencoded", "team=acme&channel=%23sales&user=%40bob&text=leads+zylker")
	f.Add("application/json", `{"chanel":"typo"}`)
	f.Add("application/x-www-form-urlencoded", "%zz=1")
	f.Add("application/json", `[`)
	f.Fuzz(func(t *testing.T, contentType, body string) {
		r := httptest.NewRequest(http.MethodPost, "/_standin/slash", strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		_, err := readActRequest(httptest.NewRecorder(), r)
		if err == nil {
			return
		}
		var ae *actError
		if !errors.As(err, &ae) || ae.status != http.StatusBadRequest {
			t.Fatalf("refusal %v is not a 400 actError", err)
		}
	})
}
