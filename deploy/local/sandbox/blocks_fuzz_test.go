package sandbox

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// FuzzBlocks: whatever blocks an app sends, the feed renders without
// failing, and none of their text becomes markup or a script.
func FuzzBlocks(f *testing.F) {
	f.Add(answerBlocks)
	f.Add(`[{"type":"section","text":{"type":"mrkdwn","text":"<script>alert(1)</script>"},"accessory":{"type":"button","url":"javascript:alert(1)","text":{"type":"plain_text","text":"x"}}}]`)
	f.Add(`[{"type":"image","image_url":"javascript:x","alt_text":"\"><script>"}]`)
	srv := &Server{}
	tpl, err := parsePages()
	if err != nil {
		f.Fatal(err)
	}
	srv.pages = tpl
	f.Fuzz(func(t *testing.T, raw string) {
		var probe struct {
			Blocks json.RawMessage `json:"blocks"`
		}
		blocks := json.RawMessage(raw)
		if json.Unmarshal([]byte(raw), &probe) == nil && len(probe.Blocks) > 0 {
			blocks = probe.Blocks
		}
		rd := renderer{names: func(id string) string { return id }}
		p := &pageView{Team: "T1", Channel: "C1", User: "U1", Messages: []messageView{{Key: "1", Author: "app", At: time.Unix(0, 0), Blocks: rd.blocks(blocks)}}}
		var out bytes.Buffer
		if err := srv.pages.ExecuteTemplate(&out, "feed", p); err != nil {
			t.Fatalf("feed: %v", err)
		}
		low := strings.ToLower(out.String())
		if strings.Contains(low, "<script") || strings.Contains(low, `href="javascript:`) || strings.Contains(low, `src="javascript:`) {
			t.Fatalf("blocks %q made markup: %s", raw, out.String())
		}
	})
}
