package slackstandin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"time"
)

// Paths under Config.AppURL the stand-in posts to, as configured in a Slack
// app's settings (Slash Commands, Interactivity, Event Subscriptions).
const (
	AppPathCommands     = "/slack/commands"
	AppPathInteractions = "/slack/interactions"
	AppPathEvents       = "/slack/events"
)

// DefaultCommand is the slash command POST /_standin/slash sends when none
// is given.
const DefaultCommand = "/zcrm"

// actTimeout caps how long the stand-in waits for the app. Slack gives up
// after three seconds; the stand-in waits longer so a slow answer is still
// seen, with its took_ms.
const actTimeout = 30 * time.Second

// maxActBody caps the body of /_standin/slash and /_standin/click.
const maxActBody = 64 << 10

// ActRequest is the body of POST /_standin/slash and POST /_standin/click,
// as a form (or query string) or JSON with these keys. Team, Channel and
// User name the person acting and where: ids, or the team's name or domain,
// the channel's name (with or without '#'), the user's name (with or
// without '@') or email. With no team, the first workspace (seed order)
// that has the user is taken.
type ActRequest struct {
	Team    string `json:"team,omitempty"`
	Channel string `json:"channel,omitempty"`
	User    string `json:"user,omitempty"`
	// Command and Text are the slash command (default [DefaultCommand])
	// and what follows it.
	Command string `json:"command,omitempty"`
	Text    string `json:"text,omitempty"`
	// ActionID, BlockID and Value are the clicked button's; ActionID is
	// required for a click. Label is its text (default: ActionID).
	ActionID string `json:"action_id,omitempty"`
	BlockID  string `json:"block_id,omitempty"`
	Value    string `json:"value,omitempty"`
	Label    string `json:"label,omitempty"`
	// MessageTS is the channel message holding the button. Without it the
	// button is in an ephemeral message, such as a slash command's answer.
	MessageTS string `json:"message_ts,omitempty"`
	// ResponseURL is the response_url of the answer holding the button; it
	// supplies the team, channel and user when they are not given. Like
	// Slack, the click carries a fresh response_url of its own.
	ResponseURL string `json:"response_url,omitempty"`
}

// ActResult is the stand-in's answer to /_standin/slash and /_standin/click:
// what the app answered and where the person acted.
type ActResult struct {
	OK bool `json:"ok"`
	// Status is the app's HTTP status.
	Status int `json:"status"`
	// Body is the app's answer: the JSON itself when it is JSON (a slash
	// command's immediate message), else the text ("" for none).
	Body json.RawMessage `json:"body"`
	// ResponseURL and TriggerID are those the payload carried; later
	// answers posted to the response_url are in GET /_standin/messages.
	ResponseURL string `json:"response_url"`
	TriggerID   string `json:"trigger_id"`
	// TookMS is how long the app took; Slack gives up after 3000.
	TookMS float64 `json:"took_ms"`
	// Team, Channel and User are the resolved ids.
	Team    string `json:"team"`
	Channel string `json:"channel"`
	User    string `json:"user"`
}

// actError is a refusal of /_standin/slash or /_standin/click.
type actError struct {
	status int
	code   string
	detail string
}

func (e *actError) Error() string { return e.code + ": " + e.detail }

func refuse(status int, code, format string, a ...any) *actError {
	return &actError{status: status, code: code, detail: fmt.Sprintf(format, a...)}
}

func writeActError(w http.ResponseWriter, err error) {
	var ae *actError
	if !errors.As(err, &ae) {
		ae = refuse(http.StatusInternalServerError, "internal_error", "%v", err)
	}
	writeJSON(w, ae.status, obj{"ok": false, "error": ae.code, "detail": ae.detail})
}

// readActRequest reads a form, a query string or a JSON object.
func readActRequest(w http.ResponseWriter, r *http.Request) (ActRequest, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxActBody)
	var in ActRequest
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/json" {
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			return in, refuse(http.StatusBadRequest, "invalid_json", "%v", err)
		}
		return in, nil
	}
	if err := r.ParseForm(); err != nil {
		return in, refuse(http.StatusBadRequest, "invalid_form", "%v", err)
	}
	f := r.Form
	return ActRequest{
		Team: f.Get("team"), Channel: f.Get("channel"), User: f.Get("user"),
		Command: f.Get("command"), Text: f.Get("text"),
		ActionID: f.Get("action_id"), BlockID: f.Get("block_id"), Value: f.Get("value"), Label: f.Get("label"),
		MessageTS: f.Get("message_ts"), ResponseURL: f.Get("response_url"),
	}, nil
}

// place is where a person acts, as ids.
type place struct{ team, channel, user string }

// resolveLocked turns what a person typed into ids, or says which one is
// unknown.
func (s *Server) resolveLocked(in ActRequest) (place, error) {
	teamRef, channelRef, userRef := strings.TrimSpace(in.Team), strings.TrimSpace(in.Channel), strings.TrimSpace(in.User)
	if userRef == "" {
		return place{}, refuse(http.StatusBadRequest, "missing_user", "user is required: an id, name or email of the seed")
	}
	if channelRef == "" {
		return place{}, refuse(http.StatusBadRequest, "missing_channel", "channel is required: an id or a name of the seed")
	}
	var t *team
	var u *User
	if teamRef != "" {
		if t = s.findTeamLocked(teamRef); t == nil {
			return place{}, refuse(http.StatusNotFound, "unknown_team", "no workspace %q (an id, name or domain of the seed)", teamRef)
		}
		if u = findUser(t, userRef); u == nil {
			return place{}, refuse(http.StatusNotFound, "unknown_user", "no user %q in workspace %s", userRef, t.ws.ID)
		}
	} else {
		for _, id := range s.st.order {
			if u = findUser(s.st.teams[id], userRef); u != nil {
				t = s.st.teams[id]
				break
			}
		}
		if u == nil {
			return place{}, refuse(http.StatusNotFound, "unknown_user", "no user %q in any workspace", userRef)
		}
	}
	switch {
	case u.IsBot:
		return place{}, refuse(http.StatusBadRequest, "user_is_bot", "user %s is a bot", u.ID)
	case u.Deleted:
		return place{}, refuse(http.StatusBadRequest, "user_is_deactivated", "user %s is deactivated", u.ID)
	}
	var ch *channel
	if isConversationID(channelRef) {
		ch = s.st.conversation(t, channelRef)
	} else {
		ch = s.st.conversationByName(t, channelRef)
	}
	switch {
	case ch == nil:
		return place{}, refuse(http.StatusNotFound, "unknown_channel", "no channel %q in workspace %s", channelRef, t.ws.ID)
	case ch.hidden(u.ID):
		return place{}, refuse(http.StatusNotFound, "unknown_channel", "channel %s is private and user %s is not a member", ch.id, u.ID)
	case ch.archived:
		return place{}, refuse(http.StatusBadRequest, "is_archived", "channel %s is archived", ch.id)
	}
	return place{team: t.ws.ID, channel: ch.id, user: u.ID}, nil
}

func (s *Server) findTeamLocked(ref string) *team {
	for _, id := range s.st.order {
		t := s.st.teams[id]
		if t.ws.ID == ref || strings.EqualFold(t.ws.Name, ref) || strings.EqualFold(t.ws.Domain, ref) {
			return t
		}
	}
	return nil
}

func findUser(t *team, ref string) *User {
	ref = strings.TrimPrefix(ref, "@")
	for _, id := range t.userOrder {
		u := t.users[id]
		if u.ID == ref || strings.EqualFold(u.Name, ref) || (u.Email != "" && strings.EqualFold(u.Email, ref)) {
			return u
		}
	}
	return nil
}

// fromResponseURLLocked fills the team, channel and user of a click from
// the response_url of the answer it is in.
func (s *Server) fromResponseURLLocked(in *ActRequest) error {
	id, ok := responseURLID(in.ResponseURL)
	ru := s.responses[id]
	if !ok || ru == nil || s.now().Sub(ru.created) >= responseURLLifetime {
		return refuse(http.StatusNotFound, "unknown_response_url", "response_url %q was not minted by this stand-in or has expired", in.ResponseURL)
	}
	if in.Team == "" {
		in.Team = ru.team
	}
	if in.Channel == "" {
		in.Channel = ru.channel
	}
	if in.User == "" {
		in.User = ru.user
	}
	return nil
}

// appEndpoint is the app's URL for path, or a refusal when no app is set.
func (s *Server) appEndpoint(path string) (string, error) {
	if s.appURL == "" {
		return "", refuse(http.StatusServiceUnavailable, "app_url_not_configured",
			"the stand-in has no app to send to: set Config.AppURL (deploy/local sets it to GATEWAY_PUBLIC_URL)")
	}
	return s.appURL + path, nil
}

// serveSlash: POST /_standin/slash (team, channel, user, command, text)
// sends a signed slash command to the app and returns its answer.
func (s *Server) serveSlash(w http.ResponseWriter, r *http.Request) {
	res, err := s.actSlash(w, r)
	if err != nil {
		writeActError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) actSlash(w http.ResponseWriter, r *http.Request) (*ActResult, error) {
	endpoint, err := s.appEndpoint(AppPathCommands)
	if err != nil {
		return nil, err
	}
	in, err := readActRequest(w, r)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	p, err := s.resolveLocked(in)
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	cmd := strings.TrimSpace(in.Command)
	if cmd == "" {
		cmd = DefaultCommand
	}
	if !strings.HasPrefix(cmd, "/") {
		cmd = "/" + cmd
	}
	ctx, cancel := context.WithTimeout(r.Context(), actTimeout)
	defer cancel()
	d, err := s.relay.SlashCommand(ctx, endpoint, SlashCommand{TeamID: p.team, ChannelID: p.channel, UserID: p.user, Command: cmd, Text: in.Text})
	return s.actResult("slash", endpoint, p, d, err)
}

// serveClick: POST /_standin/click (team, channel, user, action_id, value,
// block_id, label, message_ts, response_url) sends a signed block_actions
// payload for a button click and returns the app's answer.
func (s *Server) serveClick(w http.ResponseWriter, r *http.Request) {
	res, err := s.actClick(w, r)
	if err != nil {
		writeActError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) actClick(w http.ResponseWriter, r *http.Request) (*ActResult, error) {
	endpoint, err := s.appEndpoint(AppPathInteractions)
	if err != nil {
		return nil, err
	}
	in, err := readActRequest(w, r)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(in.ActionID) == "" {
		return nil, refuse(http.StatusBadRequest, "missing_action_id", "action_id is required: the clicked button's action_id")
	}
	s.mu.Lock()
	if in.ResponseURL != "" {
		err = s.fromResponseURLLocked(&in)
	}
	var p place
	if err == nil {
		p, err = s.resolveLocked(in)
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	label := in.Label
	if label == "" {
		label = in.ActionID
	}
	ctx, cancel := context.WithTimeout(r.Context(), actTimeout)
	defer cancel()
	d, err := s.relay.BlockAction(ctx, endpoint, BlockAction{
		TeamID: p.team, ChannelID: p.channel, UserID: p.user, MessageTS: in.MessageTS, Ephemeral: in.MessageTS == "",
		ActionID: in.ActionID, BlockID: in.BlockID, Value: in.Value, Text: label,
	})
	return s.actResult("click", endpoint, p, d, err)
}

// actResult reports a delivery, or the app being unreachable.
func (s *Server) actResult(kind, endpoint string, p place, d *Delivery, err error) (*ActResult, error) {
	if err != nil {
		s.cfg.Logger.Warn("stand-in could not reach the app", "kind", kind, "team", p.team, "err", err)
		return nil, refuse(http.StatusBadGateway, "app_unreachable", "sending to %s: %v", endpoint, err)
	}
	s.cfg.Logger.Info("stand-in acted as a Slack user", "kind", kind, "team", p.team, "channel", p.channel, "user", p.user, "status", d.StatusCode, "took", d.Duration)
	body := json.RawMessage(`""`)
	if trimmed := bytes.TrimSpace(d.Body); len(trimmed) > 0 && json.Valid(trimmed) {
		body = trimmed
	} else if len(d.Body) > 0 {
		body, _ = json.Marshal(string(d.Body))
	}
	return &ActResult{
		OK: true, Status: d.StatusCode, Body: body, ResponseURL: d.ResponseURL, TriggerID: d.TriggerID,
		TookMS: float64(d.Duration.Microseconds()) / 1000, Team: p.team, Channel: p.channel, User: p.user,
	}, nil
}
