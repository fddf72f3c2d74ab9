package followup

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/responseurl"
	"github.com/crmslack/crmslack/libs/testkit"
	integrationv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/integration/v1"
)

func TestFallbackUnlessDelivered(t *testing.T) {
	t.Parallel()
	posts := make(chan map[string]any, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &m)
		m["path"] = r.URL.Path
		posts <- m
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(hook.Close)
	replies, err := responseurl.New(hook.URL)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := New(slog.New(slog.DiscardHandler), Options{Deadline: 100 * time.Millisecond, Replies: replies})
	if err != nil {
		t.Fatal(err)
	}
	delivered := func(key string) []byte {
		b, _ := proto.Marshal(&integrationv1.DeliverySucceeded{IdempotencyKey: key})
		return b
	}
	tr.Expect("slack-command:1", time.Now(), hook.URL+"/commands/T1/1/a", "no answer")
	tr.Expect("slack-command:2", time.Now(), hook.URL+"/commands/T1/2/b", "no answer")
	tr.Expect("slack-interaction:3", time.Now(), hook.URL+"/actions/T1/3/c", "no share")
	tr.Expect("slack-command:4", time.Now(), "https://evil.example/commands/T1/4/d", "no answer")
	tr.Delivered(delivered("slack-command:1"))
	tr.Delivered(delivered("slack-interaction:3/respond"))
	select {
	case p := <-posts:
		if p["path"] != "/commands/T1/2/b" || p["text"] != "no answer" || p["response_type"] != "ephemeral" {
			t.Fatalf("fallback %v", p)
		}
	case <-time.After(testkit.DefaultTimeout):
		t.Fatal("no fallback for the unanswered command")
	}
	time.Sleep(300 * time.Millisecond) // would any other fallback come?
	if len(posts) != 0 {
		t.Fatalf("fallbacks for answered requests or a foreign URL: %v", <-posts)
	}
	if tr.Pending() != 0 {
		t.Fatalf("%d still pending", tr.Pending())
	}
}
