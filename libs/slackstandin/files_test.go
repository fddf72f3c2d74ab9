package slackstandin

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/slack-go/slack"
)

func TestUploadFileV2WithSlackGo(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	api := slackClient(t, srv, srv.IssueBotToken(acme))
	report := "deal,amount\nInitech,120000\n"
	sum, err := api.UploadFileContext(testContext(t), slack.UploadFileParameters{
		Reader: strings.NewReader(report), FileSize: len(report), Filename: "pipeline.csv",
		Title: "Pipeline", Channel: sales, InitialComment: "Weekly pipeline",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sum.ID, "F") || sum.Title != "Pipeline" {
		t.Fatalf("summary %+v", sum)
	}
	files, err := srv.WaitForFiles(testContext(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	f := files[0]
	if f.ID != sum.ID || f.Name != "pipeline.csv" || f.Team != acme || string(f.Content) != report ||
		!slices.Equal(f.Channels, []string{sales}) || f.InitialComment != "Weekly pipeline" {
		t.Fatalf("recorded %+v", f)
	}

	req, _ := http.NewRequestWithContext(testContext(t), http.MethodGet, srv.URL()+"/_standin/files/"+sum.ID+"/content", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(got) != report {
		t.Fatalf("content over HTTP: %d %q", resp.StatusCode, got)
	}
}

func TestUploadRawBodyAndThread(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	tok := srv.IssueBotToken(acme)
	data := []byte{0x89, 'P', 'N', 'G', 0, 1, 2, 3}
	u := callForm(t, srv, "files.getUploadURLExternal", tok, url.Values{"filename": {"chart.png"}, "length": {"8"}, "alt_txt": {"Pipeline chart"}})
	wantOK(t, u)
	resp, err := http.Post(u.body["upload_url"].(string), "application/octet-stream", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("upload: HTTP %d", resp.StatusCode)
	}
	id := u.body["file_id"].(string)
	wantOK(t, callForm(t, srv, "files.completeUploadExternal", tok, url.Values{
		"files": {`[{"id":"` + id + `"}]`}, "channels": {alice}, "thread_ts": {"1700000000.000100"},
	}))
	f := srv.Files()[0]
	if f.Title != "chart.png" || f.AltText != "Pipeline chart" || !bytes.Equal(f.Content, data) || !strings.HasPrefix(f.Channels[0], "D") || f.ThreadTS != "1700000000.000100" {
		t.Fatalf("recorded %+v", f)
	}
}

func TestUploadErrors(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	tok := srv.IssueBotToken(acme)
	otherTeam := srv.IssueBotToken(globex)

	// reserve gets an upload URL; upload sends body to it.
	reserve := func(t *testing.T, length string) (id, uploadURL string) {
		t.Helper()
		a := callForm(t, srv, "files.getUploadURLExternal", tok, url.Values{"filename": {"a.txt"}, "length": {length}})
		wantOK(t, a)
		return a.body["file_id"].(string), a.body["upload_url"].(string)
	}
	upload := func(t *testing.T, uploadURL, body string) int {
		t.Helper()
		resp, err := http.Post(uploadURL, "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	complete := func(t *testing.T, token, id string, extra url.Values) apiAnswer {
		t.Helper()
		form := url.Values{"files": {`[{"id":"` + id + `","title":"t"}]`}}
		for k, v := range extra {
			form[k] = v
		}
		return callForm(t, srv, "files.completeUploadExternal", token, form)
	}

	t.Run("reserve arguments", func(t *testing.T) {
		t.Parallel()
		wantError(t, callForm(t, srv, "files.getUploadURLExternal", tok, url.Values{"length": {"3"}}), "invalid_arguments")
		wantError(t, callForm(t, srv, "files.getUploadURLExternal", tok, url.Values{"filename": {"a"}}), "invalid_arguments")
		wantError(t, callForm(t, srv, "files.getUploadURLExternal", tok, url.Values{"filename": {"a"}, "length": {"0"}}), "missing_argument")
		wantError(t, callForm(t, srv, "files.getUploadURLExternal", tok, url.Values{"filename": {"a"}, "length": {"3"}, "alt_txt": {strings.Repeat("a", 1001)}}), "alt_txt_too_large")
		wantError(t, callForm(t, srv, "files.getUploadURLExternal", srv.IssueBotToken(acme, "chat:write"), url.Values{"filename": {"a"}, "length": {"3"}}), "missing_scope")
	})
	t.Run("size must match length", func(t *testing.T) {
		t.Parallel()
		id, u := reserve(t, "10")
		if got := upload(t, u, "short"); got != http.StatusBadRequest {
			t.Fatalf("short upload: HTTP %d", got)
		}
		if got := upload(t, u, strings.Repeat("x", 11)); got != http.StatusBadRequest {
			t.Fatalf("long upload: HTTP %d", got)
		}
		wantError(t, complete(t, tok, id, url.Values{"channel_id": {sales}}), "file_not_found")
	})
	t.Run("upload once", func(t *testing.T) {
		t.Parallel()
		_, u := reserve(t, "3")
		if got := upload(t, u, "abc"); got != http.StatusOK {
			t.Fatalf("HTTP %d", got)
		}
		if got := upload(t, u, "abc"); got != http.StatusConflict {
			t.Fatalf("second upload: HTTP %d", got)
		}
	})
	t.Run("unknown upload URL", func(t *testing.T) {
		t.Parallel()
		if got := upload(t, srv.URL()+"/upload/v1/nope", "abc"); got != http.StatusNotFound {
			t.Fatalf("HTTP %d", got)
		}
	})
	t.Run("complete", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name, token string
			extra       url.Values
			want        string
		}{
			{"other team's file", otherTeam, nil, "file_not_found"},
			{"channel bot is not in", tok, url.Values{"channel_id": {random}}, "not_in_channel"},
			{"unknown channel", tok, url.Values{"channels": {"C0NOPE"}}, "channel_not_found"},
			{"thread in two channels", tok, url.Values{"channels": {sales + "," + general}, "thread_ts": {"1700000000.000100"}}, "invalid_arguments"},
			{"invalid blocks", tok, url.Values{"channel_id": {sales}, "blocks": {`[{"type":"nope"}]`}}, "invalid_blocks"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				id, u := reserve(t, "3")
				if got := upload(t, u, "abc"); got != http.StatusOK {
					t.Fatalf("HTTP %d", got)
				}
				wantError(t, complete(t, tt.token, id, tt.extra), tt.want)
			})
		}
	})
	t.Run("complete once", func(t *testing.T) {
		t.Parallel()
		id, u := reserve(t, "3")
		upload(t, u, "abc")
		wantOK(t, complete(t, tok, id, nil))
		wantError(t, complete(t, tok, id, nil), "file_not_found")
	})
	t.Run("files argument", func(t *testing.T) {
		t.Parallel()
		wantError(t, callForm(t, srv, "files.completeUploadExternal", tok, nil), "invalid_arguments")
		wantError(t, callForm(t, srv, "files.completeUploadExternal", tok, url.Values{"files": {"[]"}}), "invalid_arguments")
	})
}
