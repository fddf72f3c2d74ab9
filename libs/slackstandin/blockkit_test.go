package slackstandin

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/crmslack/crmslack/libs/blockkit"
)

// TestBlocksOnTheWire: chat.postMessage refuses blocks exactly as
// blockkit.Validate does (which has the table of Slack's limits), with its
// code as the error and its messages as response_metadata.messages.
func TestBlocksOnTheWire(t *testing.T) {
	t.Parallel()
	srv, _ := startQuiet(t)
	tok := srv.IssueBotToken(acme)
	for _, tc := range []struct{ name, blocks, wantCode string }{
		{"accepted", `[{"type":"section","text":{"type":"mrkdwn","text":"hi"}},{"type":"divider"}]`, ""},
		{"empty array", `[]`, ""},
		{"one problem", `[{"type":"header","text":{"type":"plain_text","text":"` + strings.Repeat("h", 151) + `"}}]`, blockkit.CodeInvalidBlocks},
		{"two problems", `[{"type":"divider","block_id":"d"},{"type":"divider","block_id":"d"},{"type":"carousel"}]`, blockkit.CodeInvalidBlocks},
		{"malformed JSON", `[{"type":"divider"`, blockkit.CodeInvalidBlocksFormat},
		{"object instead of array", `{"type":"divider"}`, blockkit.CodeInvalidBlocksFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := callForm(t, srv, "chat.postMessage", tok, url.Values{"channel": {sales}, "text": {"fallback"}, "blocks": {tc.blocks}})
			err := blockkit.Validate([]byte(tc.blocks))
			if tc.wantCode == "" {
				if err != nil {
					t.Fatalf("blockkit.Validate: %v", err)
				}
				wantOK(t, a)
				return
			}
			var be *blockkit.Error
			if !errors.As(err, &be) || be.Code != tc.wantCode {
				t.Fatalf("blockkit.Validate = %v, want %s", err, tc.wantCode)
			}
			wantError(t, a, tc.wantCode)
			var got []string
			msgs, _ := a.body["response_metadata"].(map[string]any)["messages"].([]any)
			for _, m := range msgs {
				s, _ := m.(string)
				got = append(got, s)
			}
			if !slices.Equal(got, be.Messages) {
				t.Fatalf("response_metadata.messages = %q, want %q", got, be.Messages)
			}
		})
	}
}
