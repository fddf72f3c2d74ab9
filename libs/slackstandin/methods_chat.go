package slackstandin

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"

	"github.com/crmslack/crmslack/libs/blockkit"
)

const (
	// maxAttachments is where Slack refuses with too_many_attachments.
	maxAttachments = 100
)

// content is what a message says.
type content struct {
	text                string
	blocks, attachments json.RawMessage
}

func (c content) empty() bool { return c.text == "" && c.blocks == nil && c.attachments == nil }

// readContent checks a message's text, blocks and attachments like Slack.
func readContent(text string, blocks, attachments []byte) (content, error) {
	var ct content
	if utf8.RuneCountInString(text) > blockkit.MaxMessageText {
		return ct, errCode("msg_too_long")
	}
	ct.text = text
	if len(bytes.TrimSpace(blocks)) > 0 {
		if err := blockkit.Validate(blocks); err != nil {
			var be *blockkit.Error
			errors.As(err, &be)
			return ct, errCode(be.Code, be.Messages...)
		}
		var buf bytes.Buffer
		_ = json.Compact(&buf, blocks) // valid: blockkit.Validate decoded it
		if buf.String() != "[]" {
			ct.blocks = buf.Bytes()
		}
	}
	if len(bytes.TrimSpace(attachments)) > 0 {
		var list []json.RawMessage
		if err := json.Unmarshal(attachments, &list); err != nil {
			return ct, errCode("invalid_attachments")
		}
		if len(list) > maxAttachments {
			return ct, errCode("too_many_attachments")
		}
		if len(list) > 0 {
			ct.attachments, _ = json.Marshal(list)
		}
	}
	return ct, nil
}

// messageContent reads and checks the content arguments of a chat method.
func messageContent(a args) (content, error) {
	ct, err := readContent(a.get("text"), a.doc("blocks"), a.doc("attachments"))
	if err != nil {
		return ct, err
	}
	if ct.empty() {
		return ct, errCode("no_text")
	}
	return ct, nil
}

// target resolves a channel argument: a conversation id, a channel name,
// or a user id, which Slack takes as the DM with that user.
func (s *Server) target(c *call, arg string) (*channel, error) {
	t := c.team
	var ch *channel
	switch {
	case arg == "":
		return nil, errCode("channel_not_found")
	case isUserID(arg):
		u := t.users[arg]
		if u == nil || u.ID == c.tok.userID {
			return nil, errCode("channel_not_found")
		}
		ch, _ = s.st.openDM(t, []string{arg}, s.now())
	case isConversationID(arg):
		ch = s.st.conversation(t, arg)
	default:
		ch = s.st.conversationByName(t, arg)
	}
	if ch == nil || ch.hidden(c.tok.userID) {
		return nil, errCode("channel_not_found")
	}
	return ch, nil
}

// canPost applies Slack's posting rules: no archived channels, and only
// channels the poster is in, except public ones with chat:write.public.
func canPost(c *call, ch *channel) error {
	if ch.archived {
		return errCode("is_archived")
	}
	if !ch.isMember(c.tok.userID) && (ch.private || !c.tok.has("chat:write.public")) {
		return errCode("not_in_channel")
	}
	return nil
}

func (s *Server) chatPostMessage(c *call) (obj, error) {
	ch, err := s.target(c, c.args.get("channel"))
	if err != nil {
		return nil, err
	}
	if err := canPost(c, ch); err != nil {
		return nil, err
	}
	ct, err := messageContent(c.args)
	if err != nil {
		return nil, err
	}
	meta, err := readMetadata(c.args.doc("metadata"))
	if err != nil {
		return nil, err
	}
	if err := s.allow("chat.postMessage/"+ch.id, s.cfg.RateLimits.PostMessagePerChannel); err != nil {
		s.stats.RateLimitedChannels[ch.id]++
		return nil, err
	}
	p := &posted{
		team: c.team.ws.ID, channel: ch.id, ts: s.nextTS(), threadTS: c.args.get("thread_ts"),
		author: c.tok.userID, botID: c.tok.botID,
		text: ct.text, blocks: ct.blocks, attachments: ct.attachments, metadata: meta,
	}
	s.st.addPosted(p)
	s.recordLocked(Message{
		Kind: KindMessage, Team: p.team, Channel: ch.id, User: ch.imUser, Author: p.author,
		TS: p.ts, ThreadTS: p.threadTS, Text: p.text, Blocks: p.blocks, Attachments: p.attachments,
		Metadata: p.metadata,
	})
	m := s.messageObj(c.team, p)
	m.Metadata = p.metadata
	return obj{"channel": ch.id, "ts": p.ts, "message": m}, nil
}

func (s *Server) chatUpdate(c *call) (obj, error) {
	ch := s.st.conversation(c.team, c.args.get("channel"))
	if ch == nil || ch.hidden(c.tok.userID) {
		return nil, errCode("channel_not_found")
	}
	p := s.st.posted[ch.id+"/"+c.args.get("ts")]
	if p == nil || p.deleted {
		return nil, errCode("message_not_found")
	}
	if p.author != c.tok.userID {
		return nil, errCode("cant_update_message")
	}
	if ch.archived {
		return nil, errCode("is_inactive")
	}
	ct, err := messageContent(c.args)
	if err != nil {
		return nil, err
	}
	meta, err := readMetadata(c.args.doc("metadata"))
	if err != nil {
		return nil, err
	}
	if meta != nil {
		p.metadata = meta // Slack keeps the metadata unless new metadata is sent
	}
	p.text, p.blocks = ct.text, ct.blocks
	// Slack keeps the previous attachments unless new ones are sent.
	if ct.attachments != nil {
		p.attachments = ct.attachments
	}
	s.recordLocked(Message{
		Kind: KindUpdate, Team: p.team, Channel: ch.id, User: ch.imUser, Author: p.author,
		TS: p.ts, ThreadTS: p.threadTS, Text: p.text, Blocks: p.blocks, Attachments: p.attachments,
	})
	return obj{"channel": ch.id, "ts": p.ts, "text": p.text, "message": s.messageObj(c.team, p)}, nil
}

func (s *Server) chatPostEphemeral(c *call) (obj, error) {
	ch, err := s.target(c, c.args.get("channel"))
	if err != nil {
		return nil, err
	}
	if err := canPost(c, ch); err != nil {
		return nil, err
	}
	userID := c.args.get("user")
	if userID == "" {
		return nil, invalidArgs("missing required field: user [json-pointer:/user]")
	}
	if c.team.users[userID] == nil {
		return nil, errCode("user_not_found")
	}
	if !ch.isMember(userID) {
		return nil, errCode("user_not_in_channel")
	}
	ct, err := messageContent(c.args)
	if err != nil {
		return nil, err
	}
	ts := s.nextTS()
	s.recordLocked(Message{
		Kind: KindEphemeral, Team: c.team.ws.ID, Channel: ch.id, User: userID, Author: c.tok.userID,
		TS: ts, ThreadTS: c.args.get("thread_ts"), Text: ct.text, Blocks: ct.blocks, Attachments: ct.attachments,
	})
	return obj{"message_ts": ts}, nil
}

// message is a message object as Slack's chat and history methods show
// it. A struct rather than a map: chat.postMessage returns one on every
// post, and the maps (two, with the bot's profile) and their sorted
// encoding were a third of the stand-in's allocations per post.
type message struct {
	Type        string          `json:"type"`
	Text        string          `json:"text"`
	User        string          `json:"user"`
	TS          string          `json:"ts"`
	Team        string          `json:"team"`
	BotID       string          `json:"bot_id,omitempty"`
	AppID       *string         `json:"app_id,omitempty"`
	BotProfile  *botProfile     `json:"bot_profile,omitempty"`
	ThreadTS    string          `json:"thread_ts,omitempty"`
	Blocks      json.RawMessage `json:"blocks,omitempty"`
	Attachments json.RawMessage `json:"attachments,omitempty"`
	Metadata    json.RawMessage `json:"metadata,omitempty"`
	// A message sharing a file (conversations.history).
	Files        []obj `json:"files,omitempty"`
	Upload       bool  `json:"upload,omitempty"`
	DisplayAsBot *bool `json:"display_as_bot,omitempty"`
}

type botProfile struct {
	ID      string `json:"id"`
	AppID   string `json:"app_id"`
	Name    string `json:"name"`
	Deleted bool   `json:"deleted"`
	TeamID  string `json:"team_id"`
}

// messageObj is the message object Slack returns from chat methods.
func (s *Server) messageObj(t *team, p *posted) *message {
	m := &message{Type: "message", Text: p.text, User: p.author, TS: p.ts, Team: p.team,
		ThreadTS: p.threadTS, Blocks: p.blocks, Attachments: p.attachments}
	if p.botID != "" {
		m.BotID, m.AppID = p.botID, &s.cfg.App.AppID
		m.BotProfile = &botProfile{ID: p.botID, AppID: s.cfg.App.AppID, Name: t.ws.Bot.Name, TeamID: p.team}
	}
	return m
}

// maxMetadataBytes is where the stand-in refuses metadata with
// metadata_too_large (Slack documents no number; 8 KB is generous).
const maxMetadataBytes = 8 << 10

// readMetadata checks a message's metadata argument like Slack: a JSON
// object, inline in a JSON body or encoded as a string in a form, with an
// event_type string and an event_payload object. It returns the metadata
// compacted, or nil when there is none.
func readMetadata(raw []byte) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, nil
	}
	if len(raw) > maxMetadataBytes {
		return nil, errCode("metadata_too_large")
	}
	// One validating scan and one decode (this runs on every post).
	if raw[0] != '{' || !json.Valid(raw) {
		return nil, errCode("invalid_metadata_format")
	}
	var m struct {
		EventType    *string         `json:"event_type"`
		EventPayload json.RawMessage `json:"event_payload"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, errCode("invalid_metadata_schema", "[ERROR] event_type must be a string [json-pointer:/metadata/event_type]")
	}
	if m.EventType == nil || *m.EventType == "" {
		return nil, errCode("invalid_metadata_schema", "[ERROR] missing required field: event_type [json-pointer:/metadata/event_type]")
	}
	// Valid JSON already: a payload that starts as an object is one.
	if p := bytes.TrimSpace(m.EventPayload); len(p) == 0 || p[0] != '{' {
		return nil, errCode("invalid_metadata_schema", "[ERROR] event_payload must be an object [json-pointer:/metadata/event_payload]")
	}
	// Marshal writes compact JSON (the payload compacted too).
	out, _ := json.Marshal(struct {
		EventType    string          `json:"event_type"`
		EventPayload json.RawMessage `json:"event_payload"`
	}{*m.EventType, m.EventPayload})
	return out, nil
}
