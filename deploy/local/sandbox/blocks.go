package sandbox

import (
	"encoding/json"
	"html/template"
)

// blockView is one Block Kit block made ready for the page's template.
type blockView struct {
	Type      string
	BlockID   string
	Text      template.HTML
	Fields    []template.HTML
	Elements  []elementView
	Accessory *elementView
	ImageURL  string
	AltText   string
	Title     string
}

// elementView is an element of a block: text, an image or a button.
type elementView struct {
	Kind     string // text, image, button, link, unsupported
	Text     template.HTML
	Label    string
	ActionID string
	Value    string
	URL      string
	Style    string
	ImageURL string
	AltText  string
	BlockID  string
}

type textObj struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type rawElement struct {
	Type      string          `json:"type"`
	Text      json.RawMessage `json:"text"`
	ActionID  string          `json:"action_id"`
	Value     string          `json:"value"`
	URL       string          `json:"url"`
	Style     string          `json:"style"`
	ImageURL  string          `json:"image_url"`
	AltText   string          `json:"alt_text"`
	SlackFile *struct {
		ID  string `json:"id"`
		URL string `json:"url"`
	} `json:"slack_file"`
	Placeholder *textObj `json:"placeholder"`
}

type rawBlock struct {
	Type      string          `json:"type"`
	BlockID   string          `json:"block_id"`
	Text      *textObj        `json:"text"`
	Fields    []textObj       `json:"fields"`
	Elements  []rawElement    `json:"elements"`
	Accessory *rawElement     `json:"accessory"`
	ImageURL  string          `json:"image_url"`
	AltText   string          `json:"alt_text"`
	Title     *textObj        `json:"title"`
	SlackFile json.RawMessage `json:"slack_file"`
}

// renderer turns Block Kit into views; names resolves user ids to names.
type renderer struct {
	names func(id string) string
}

func (r renderer) text(t *textObj) template.HTML {
	if t == nil {
		return ""
	}
	if t.Type == "plain_text" {
		return plain(t.Text)
	}
	return mrkdwn(t.Text, r.names)
}

// blocks renders a message's blocks; blocks it cannot read come back as
// one "unsupported" block rather than vanishing.
func (r renderer) blocks(raw json.RawMessage) []blockView {
	if len(raw) == 0 {
		return nil
	}
	var bs []rawBlock
	if err := json.Unmarshal(raw, &bs); err != nil {
		return []blockView{{Type: "unsupported", Text: plain("(blocks the sandbox cannot read: " + err.Error() + ")")}}
	}
	out := make([]blockView, 0, len(bs))
	for _, b := range bs {
		v := blockView{Type: b.Type, BlockID: b.BlockID, Text: r.text(b.Text)}
		for i := range b.Fields {
			v.Fields = append(v.Fields, r.text(&b.Fields[i]))
		}
		for _, e := range b.Elements {
			v.Elements = append(v.Elements, r.element(e, b.BlockID))
		}
		if b.Accessory != nil {
			a := r.element(*b.Accessory, b.BlockID)
			v.Accessory = &a
		}
		switch b.Type {
		case "image":
			v.ImageURL, v.AltText = imageURL(b.ImageURL, b.SlackFile), b.AltText
			if b.Title != nil {
				v.Title = b.Title.Text
			}
		case "header", "section", "context", "actions", "divider":
		default:
			v.Type, v.Text = "unsupported", plain("("+b.Type+" block: not shown in the sandbox)")
		}
		out = append(out, v)
	}
	return out
}

func (r renderer) element(e rawElement, blockID string) elementView {
	v := elementView{ActionID: e.ActionID, Value: e.Value, URL: e.URL, Style: e.Style, AltText: e.AltText, BlockID: blockID}
	switch e.Type {
	case "mrkdwn", "plain_text":
		v.Kind, v.Text = "text", r.text(&textObj{Type: e.Type, Text: stringOf(e.Text)})
	case "image":
		v.Kind = "image"
		var sf json.RawMessage
		if e.SlackFile != nil {
			sf, _ = json.Marshal(e.SlackFile)
		}
		v.ImageURL = imageURL(e.ImageURL, sf)
	case "button":
		var label textObj
		_ = json.Unmarshal(e.Text, &label)
		v.Label = label.Text
		v.Kind = "button"
		if e.URL != "" && safeURL(e.URL) {
			v.Kind = "link"
		}
	default:
		v.Kind, v.Label = "unsupported", e.Type
		if e.Placeholder != nil {
			v.Label = e.Placeholder.Text
		}
	}
	return v
}

// stringOf reads a text element's "text", a string.
func stringOf(raw json.RawMessage) string {
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

// imageURL is where the page loads an image from: an uploaded file from
// the stand-in through the sandbox, else the block's URL.
func imageURL(u string, slackFile json.RawMessage) string {
	if len(slackFile) > 0 {
		var sf struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(slackFile, &sf) == nil && sf.ID != "" {
			return "/files/" + sf.ID
		}
	}
	if safeURL(u) {
		return u
	}
	return ""
}
