package slackstandin

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Signature is Slack's v0 request signature:
// "v0=" + hex(HMAC-SHA256(secret, "v0:" + timestamp + ":" + body)).
func Signature(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	_, _ = fmt.Fprintf(mac, "v0:%s:", timestamp)
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// SignRequest sets X-Slack-Request-Timestamp and X-Slack-Signature on req
// as Slack does, for body sent at now.
func SignRequest(req *http.Request, body []byte, secret string, now time.Time) {
	ts := strconv.FormatInt(now.Unix(), 10)
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", Signature(secret, ts, body))
}

// Sender plays Slack toward an app: it builds the payloads Slack sends
// (slash commands, interactions, Events API callbacks), signs them and
// reports the app's answer. Create it with [Server.NewSender].
type Sender struct {
	srv    *Server
	client *http.Client
}

// NewSender returns a Sender signing with the app's signing secret. With a
// nil client it uses one that, like Slack, does not follow redirects, so the
// app's own answer is reported.
func (s *Server) NewSender(client *http.Client) *Sender {
	if client == nil {
		client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return &Sender{srv: s, client: client}
}

// Delivery is the app's answer to one request from the Sender.
type Delivery struct {
	StatusCode int
	Header     http.Header
	Body       []byte
	// Duration is how long the app took to answer; Slack gives up after 3s.
	Duration time.Duration
	// ResponseURL and TriggerID are those put in a slash command or
	// interaction payload.
	ResponseURL string
	TriggerID   string
}

// SendOption changes how one request is sent, for negative tests.
type SendOption func(*sendOptions)

type sendOptions struct {
	secret      string
	timestamp   time.Time
	retryNum    int
	retryReason string
}

// WithSigningSecret signs with secret instead of the app's.
func WithSigningSecret(secret string) SendOption {
	return func(o *sendOptions) { o.secret = secret }
}

// WithTimestamp signs as if sent at t; Slack apps refuse timestamps more
// than five minutes away.
func WithTimestamp(t time.Time) SendOption {
	return func(o *sendOptions) { o.timestamp = t }
}

// WithRetry marks the request as Slack's retry number num, with reason
// (Slack's are http_timeout, http_error, too_many_requests,
// connection_failed, ssl_error, unknown_error).
func WithRetry(num int, reason string) SendOption {
	return func(o *sendOptions) { o.retryNum, o.retryReason = num, reason }
}

func (sd *Sender) post(ctx context.Context, appURL, contentType string, body []byte, opts []SendOption) (*Delivery, error) {
	o := sendOptions{secret: sd.srv.cfg.App.SigningSecret, timestamp: time.Now()}
	for _, opt := range opts {
		opt(&o)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, appURL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("building request to %s: %w", appURL, err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "Slackbot 1.0 (+https://api.slack.com/robots)")
	SignRequest(req, body, o.secret, o.timestamp)
	if o.retryNum > 0 {
		req.Header.Set("X-Slack-Retry-Num", strconv.Itoa(o.retryNum))
		req.Header.Set("X-Slack-Retry-Reason", o.retryReason)
	}
	start := time.Now()
	resp, err := sd.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("sending to %s: %w", appURL, err)
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading answer from %s: %w", appURL, err)
	}
	return &Delivery{StatusCode: resp.StatusCode, Header: resp.Header, Body: respBody, Duration: time.Since(start)}, nil
}

// where resolves the team, channel and user a payload is about.
func (s *Server) where(teamID, channelID, userID string) (*team, *channel, *User, error) {
	t := s.st.teams[teamID]
	if t == nil {
		return nil, nil, nil, fmt.Errorf("unknown team %q", teamID)
	}
	ch := s.st.conversation(t, channelID)
	if ch == nil {
		return nil, nil, nil, fmt.Errorf("unknown channel %q in team %s", channelID, teamID)
	}
	u := t.users[userID]
	if u == nil {
		return nil, nil, nil, fmt.Errorf("unknown user %q in team %s", userID, teamID)
	}
	return t, ch, u, nil
}

// channelName is the channel_name Slack sends: DMs have none of their own.
func channelName(ch *channel) string {
	switch {
	case ch.im:
		return "directmessage"
	case ch.private && !ch.mpim:
		return "privategroup"
	}
	return ch.name
}

func newTriggerID() string {
	digits := "0123456789"
	return randomString(digits, 13) + "." + randomString(digits, 12) + "." + randomString("0123456789abcdef", 32)
}

// SlashCommand is someone typing a command.
type SlashCommand struct {
	TeamID, ChannelID, UserID string
	Command                   string // with the slash, e.g. "/crm"
	Text                      string
}

// SlashCommand posts cmd to appURL with the form fields Slack sends and a
// response_url minted on this server. cmd.Text is what the user typed:
// like Slack, the stand-in sends it with &, < and > escaped.
func (sd *Sender) SlashCommand(ctx context.Context, appURL string, cmd SlashCommand, opts ...SendOption) (*Delivery, error) {
	s := sd.srv
	s.mu.Lock()
	t, ch, u, err := s.where(cmd.TeamID, cmd.ChannelID, cmd.UserID)
	if err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("slash command: %w", err)
	}
	form := url.Values{
		"token":                 {s.cfg.App.VerificationToken},
		"team_id":               {t.ws.ID},
		"team_domain":           {t.ws.Domain},
		"channel_id":            {ch.id},
		"channel_name":          {channelName(ch)},
		"user_id":               {u.ID},
		"user_name":             {u.Name},
		"command":               {cmd.Command},
		"text":                  {escapeText(cmd.Text)},
		"api_app_id":            {s.cfg.App.AppID},
		"is_enterprise_install": {"false"},
		"response_url":          {s.newResponseURLLocked(replyToCommand, t.ws.ID, ch.id, u.ID, "")},
		"trigger_id":            {newTriggerID()},
	}
	if e := t.ws.Enterprise; e != nil {
		form.Set("enterprise_id", e.ID)
		form.Set("enterprise_name", e.Name)
	}
	s.mu.Unlock()
	d, err := sd.post(ctx, appURL, "application/x-www-form-urlencoded", []byte(form.Encode()), opts)
	if err != nil {
		return nil, err
	}
	d.ResponseURL, d.TriggerID = form.Get("response_url"), form.Get("trigger_id")
	return d, nil
}

// textEscaper escapes what Slack escapes in message and command text.
var textEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func escapeText(s string) string { return textEscaper.Replace(s) }

// BlockAction is someone clicking a button.
type BlockAction struct {
	TeamID, ChannelID, UserID string
	// MessageTS is the message holding the button. When the stand-in
	// knows it, the payload carries the message, as Slack's does, and the
	// response_url can replace or delete it.
	MessageTS string
	// Ephemeral says the button was in an ephemeral message.
	Ephemeral bool
	ActionID  string
	BlockID   string
	Value     string
	// Text is the button's label.
	Text string
}

// BlockAction posts a block_actions interaction to appURL as Slack does: a
// form with one field, payload, holding the JSON.
func (sd *Sender) BlockAction(ctx context.Context, appURL string, a BlockAction, opts ...SendOption) (*Delivery, error) {
	s := sd.srv
	s.mu.Lock()
	t, ch, u, err := s.where(a.TeamID, a.ChannelID, a.UserID)
	if err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("block action: %w", err)
	}
	actionTS := s.nextTS()
	responseURL := s.newResponseURLLocked(replyToInteraction, t.ws.ID, ch.id, u.ID, a.MessageTS)
	triggerID := newTriggerID()
	payload := obj{
		"type":                  "block_actions",
		"user":                  obj{"id": u.ID, "username": u.Name, "name": u.Name, "team_id": t.ws.ID},
		"api_app_id":            s.cfg.App.AppID,
		"token":                 s.cfg.App.VerificationToken,
		"container":             obj{"type": "message", "message_ts": a.MessageTS, "channel_id": ch.id, "is_ephemeral": a.Ephemeral},
		"trigger_id":            triggerID,
		"team":                  obj{"id": t.ws.ID, "domain": t.ws.Domain},
		"enterprise":            enterpriseObj(t),
		"is_enterprise_install": false,
		"channel":               obj{"id": ch.id, "name": channelName(ch)},
		"state":                 obj{"values": obj{}},
		"response_url":          responseURL,
		"actions": []obj{{
			"action_id": a.ActionID, "block_id": a.BlockID, "value": a.Value, "type": "button", "action_ts": actionTS,
			"text": obj{"type": "plain_text", "text": a.Text, "emoji": true},
		}},
	}
	if p := s.st.posted[ch.id+"/"+a.MessageTS]; p != nil && !a.Ephemeral {
		payload["message"] = s.messageObj(t, p)
	}
	s.mu.Unlock()
	raw, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("block action payload: %w", err)
	}
	body := url.Values{"payload": {string(raw)}}.Encode()
	d, err := sd.post(ctx, appURL, "application/x-www-form-urlencoded", []byte(body), opts)
	if err != nil {
		return nil, err
	}
	d.ResponseURL, d.TriggerID = responseURL, triggerID
	return d, nil
}

// EventCallback is an Events API envelope as Slack posts it.
type EventCallback struct {
	Token              string          `json:"token"`
	TeamID             string          `json:"team_id"`
	EnterpriseID       string          `json:"enterprise_id,omitempty"`
	APIAppID           string          `json:"api_app_id"`
	Event              json.RawMessage `json:"event"`
	Type               string          `json:"type"`
	EventID            string          `json:"event_id"`
	EventTime          int64           `json:"event_time"`
	Authorizations     []Authorization `json:"authorizations"`
	IsExtSharedChannel bool            `json:"is_ext_shared_channel"`
	EventContext       string          `json:"event_context"`
}

// Authorization is one installation an event is visible to.
type Authorization struct {
	EnterpriseID        *string `json:"enterprise_id"`
	TeamID              string  `json:"team_id"`
	UserID              string  `json:"user_id"`
	IsBot               bool    `json:"is_bot"`
	IsEnterpriseInstall bool    `json:"is_enterprise_install"`
}

// NewEvent wraps event (any JSON-encodable inner event, with its "type")
// in an event_callback envelope for teamID, with a fresh event_id.
func (sd *Sender) NewEvent(teamID string, event any) (EventCallback, error) {
	inner, err := json.Marshal(event)
	if err != nil {
		return EventCallback{}, fmt.Errorf("encoding event: %w", err)
	}
	s := sd.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.st.teams[teamID]
	if t == nil {
		return EventCallback{}, fmt.Errorf("new event: unknown team %q", teamID)
	}
	ev := EventCallback{
		Token: s.cfg.App.VerificationToken, TeamID: teamID, APIAppID: s.cfg.App.AppID, Event: inner,
		Type: "event_callback", EventID: newID("Ev"), EventTime: time.Now().Unix(),
		EventContext: "4-" + randomString(idAlphabet+"abcdefghijklmnopqrstuvwxyz", 40),
	}
	auth := Authorization{TeamID: teamID, UserID: t.ws.Bot.UserID, IsBot: true}
	if e := t.ws.Enterprise; e != nil {
		ev.EnterpriseID = e.ID
		auth.EnterpriseID = &e.ID
	}
	ev.Authorizations = []Authorization{auth}
	return ev, nil
}

// NewMessageEvent builds the "message" event Slack sends when userID
// writes text in channelID.
func (sd *Sender) NewMessageEvent(teamID, channelID, userID, text string) (EventCallback, error) {
	s := sd.srv
	s.mu.Lock()
	_, ch, u, err := s.where(teamID, channelID, userID)
	if err != nil {
		s.mu.Unlock()
		return EventCallback{}, fmt.Errorf("message event: %w", err)
	}
	ts := s.nextTS()
	event := obj{
		"type": "message", "channel": ch.id, "user": u.ID, "text": text, "ts": ts, "event_ts": ts,
		"channel_type":  map[string]string{"public_channel": "channel", "private_channel": "group", "im": "im", "mpim": "mpim"}[conversationType(ch)],
		"team":          teamID,
		"client_msg_id": fmt.Sprintf("%s-%s-%s-%s-%s", randomString("0123456789abcdef", 8), randomString("0123456789abcdef", 4), randomString("0123456789abcdef", 4), randomString("0123456789abcdef", 4), randomString("0123456789abcdef", 12)),
	}
	s.mu.Unlock()
	return sd.NewEvent(teamID, event)
}

// SendEvent posts ev to appURL. Sending the same ev again sends the same
// body, as Slack's retries do; see RetryEvent.
func (sd *Sender) SendEvent(ctx context.Context, appURL string, ev EventCallback, opts ...SendOption) (*Delivery, error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encoding event callback: %w", err)
	}
	return sd.post(ctx, appURL, "application/json", body, opts)
}

// RetryEvent sends ev again as Slack's retry number retryNum after the app
// did not answer in time.
func (sd *Sender) RetryEvent(ctx context.Context, appURL string, ev EventCallback, retryNum int, opts ...SendOption) (*Delivery, error) {
	return sd.SendEvent(ctx, appURL, ev, append([]SendOption{WithRetry(retryNum, "http_timeout")}, opts...)...)
}

// URLVerification sends the url_verification handshake Slack sends when
// the Request URL is saved; the app must echo the challenge.
func (sd *Sender) URLVerification(ctx context.Context, appURL, challenge string, opts ...SendOption) (*Delivery, error) {
	body, err := json.Marshal(obj{"token": sd.srv.cfg.App.VerificationToken, "challenge": challenge, "type": "url_verification"})
	if err != nil {
		return nil, fmt.Errorf("encoding url_verification: %w", err)
	}
	return sd.post(ctx, appURL, "application/json", body, opts)
}
