package card_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// checkBlocks checks marshalled blocks against Block Kit's documented
// limits, reading the JSON generically so it does not trust the types that
// produced it. It also checks that mrkdwn carries no unescaped &, < or >
// (the renderer writes no links in mrkdwn, and no mention but a user
// mention <@U…> made by card.Mention).
func checkBlocks(raw []byte) error {
	var blocks []map[string]any
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return fmt.Errorf("blocks are not a JSON array of objects: %w", err)
	}
	if len(blocks) == 0 || len(blocks) > 50 {
		return fmt.Errorf("%d blocks, want 1..50", len(blocks))
	}
	for i, b := range blocks {
		if err := checkBlock(b); err != nil {
			return fmt.Errorf("block %d (%v): %w", i, b["type"], err)
		}
	}
	return nil
}

func checkBlock(b map[string]any) error {
	switch b["type"] {
	case "divider":
		return nil
	case "header":
		return checkTextObject(b["text"], "plain_text", 150)
	case "section":
		fields, _ := b["fields"].([]any)
		if b["text"] == nil && len(fields) == 0 {
			return errors.New("section without text or fields")
		}
		if b["text"] != nil {
			if err := checkTextObject(b["text"], "", 3000); err != nil {
				return fmt.Errorf("text: %w", err)
			}
		}
		if len(fields) > 10 {
			return fmt.Errorf("%d fields, want ≤ 10", len(fields))
		}
		for j, f := range fields {
			if err := checkTextObject(f, "", 2000); err != nil {
				return fmt.Errorf("field %d: %w", j, err)
			}
		}
		return nil
	case "context":
		elems, _ := b["elements"].([]any)
		if len(elems) == 0 || len(elems) > 10 {
			return fmt.Errorf("%d context elements, want 1..10", len(elems))
		}
		for _, e := range elems {
			if err := checkTextObject(e, "", 3000); err != nil {
				return err
			}
		}
		return nil
	case "actions":
		elems, _ := b["elements"].([]any)
		if len(elems) == 0 || len(elems) > 25 {
			return fmt.Errorf("%d actions, want 1..25", len(elems))
		}
		ids := map[string]bool{}
		for _, e := range elems {
			btn, _ := e.(map[string]any)
			if btn["type"] != "button" {
				return fmt.Errorf("element %v is not a button", btn["type"])
			}
			if err := checkTextObject(btn["text"], "plain_text", 75); err != nil {
				return fmt.Errorf("button text: %w", err)
			}
			id, _ := btn["action_id"].(string)
			if n := utf8.RuneCountInString(id); n == 0 || n > 255 || ids[id] {
				return fmt.Errorf("action_id %q: empty, over 255 or duplicate", id)
			}
			ids[id] = true
			if v, _ := btn["value"].(string); utf8.RuneCountInString(v) > 2000 {
				return errors.New("button value over 2000")
			}
			if u, _ := btn["url"].(string); utf8.RuneCountInString(u) > 3000 {
				return errors.New("button url over 3000")
			}
		}
		return nil
	}
	return fmt.Errorf("unexpected block type %v", b["type"])
}

var userMention = regexp.MustCompile(`<@[UW][A-Z0-9]{2,31}>`)

// checkTextObject checks a text object of the given type ("" for either).
func checkTextObject(v any, typ string, max int) error {
	o, ok := v.(map[string]any)
	if !ok {
		return errors.New("not a text object")
	}
	t, _ := o["type"].(string)
	if (typ != "" && t != typ) || (t != "plain_text" && t != "mrkdwn") {
		return fmt.Errorf("type %q, want %q", t, typ)
	}
	s, _ := o["text"].(string)
	if err := checkText(s, max); err != nil {
		return err
	}
	if t == "mrkdwn" {
		bare := strings.NewReplacer("&amp;", "", "&lt;", "", "&gt;", "").Replace(userMention.ReplaceAllString(s, ""))
		if strings.ContainsAny(bare, "&<>") {
			return fmt.Errorf("unescaped &, < or > in %.40q", s)
		}
	}
	return nil
}

func checkText(s string, max int) error {
	switch n := utf8.RuneCountInString(s); {
	case strings.TrimSpace(s) == "":
		return errors.New("empty text")
	case n > max:
		return fmt.Errorf("%d characters, limit %d", n, max)
	case !utf8.ValidString(s):
		return errors.New("invalid UTF-8")
	}
	return nil
}
