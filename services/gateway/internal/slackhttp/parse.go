package slackhttp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
)

// ErrBadPayload wraps every parse failure of a verified request.
var ErrBadPayload = errors.New("bad payload")

var (
	teamIDRe  = regexp.MustCompile(`^[TE][A-Z0-9]{2,31}$`)
	eventIDRe = regexp.MustCompile(`^Ev[A-Za-z0-9]{2,40}$`)
)

func badf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadPayload, fmt.Sprintf(format, args...))
}

// checkTeam refuses a team id that is not Slack's shape: it becomes a
// subject token.
func checkTeam(team string) error {
	if !teamIDRe.MatchString(team) {
		return badf("team id %q", team)
	}
	return nil
}

// EventEnvelope is the part of an Events API body the gateway reads.
type EventEnvelope struct {
	Type         string `json:"type"`
	Challenge    string `json:"challenge"`
	TeamID       string `json:"team_id"`
	EnterpriseID string `json:"enterprise_id"`
	APIAppID     string `json:"api_app_id"`
	EventID      string `json:"event_id"`
	EventTime    int64  `json:"event_time"`
	Event        struct {
		Type   string `json:"type"`
		Tokens struct {
			OAuth []string `json:"oauth"`
			Bot   []string `json:"bot"`
		} `json:"tokens"`
	} `json:"event"`
}

// Events API envelope types.
const (
	TypeURLVerification = "url_verification"
	TypeEventCallback   = "event_callback"
)

// ParseEvent reads an Events API body. An event_callback must name its
// team, its event id and its inner event's type.
func ParseEvent(body []byte) (EventEnvelope, error) {
	var e EventEnvelope
	if err := json.Unmarshal(body, &e); err != nil {
		return EventEnvelope{}, badf("events body is not JSON")
	}
	switch e.Type {
	case TypeURLVerification:
		if e.Challenge == "" || len(e.Challenge) > 512 {
			return EventEnvelope{}, badf("url_verification without a usable challenge")
		}
	case TypeEventCallback:
		if err := checkTeam(e.TeamID); err != nil {
			return EventEnvelope{}, err
		}
		if !eventIDRe.MatchString(e.EventID) {
			return EventEnvelope{}, badf("event id %q", e.EventID)
		}
		if e.Event.Type == "" || len(e.Event.Type) > 64 {
			return EventEnvelope{}, badf("event without a type")
		}
	default:
		return EventEnvelope{}, badf("unknown envelope type %q", e.Type)
	}
	return e, nil
}

// SlashCommand is the part of a slash command form the gateway passes on.
type SlashCommand struct {
	TeamID, EnterpriseID, ChannelID, UserID string
	Command, Text, ResponseURL, TriggerID   string
}

// ParseSlashCommand reads a slash command's form body.
func ParseSlashCommand(body []byte) (SlashCommand, error) {
	f, err := url.ParseQuery(string(body))
	if err != nil {
		return SlashCommand{}, badf("slash command body is not a form")
	}
	c := SlashCommand{
		TeamID: f.Get("team_id"), EnterpriseID: f.Get("enterprise_id"), ChannelID: f.Get("channel_id"),
		UserID: f.Get("user_id"), Command: f.Get("command"), Text: f.Get("text"),
		ResponseURL: f.Get("response_url"), TriggerID: f.Get("trigger_id"),
	}
	if err := checkTeam(c.TeamID); err != nil {
		return SlashCommand{}, err
	}
	if c.UserID == "" || c.Command == "" || len(c.Command) > 64 {
		return SlashCommand{}, badf("slash command without user or command")
	}
	if len(c.Text) > 4000 {
		return SlashCommand{}, badf("slash command text is %d bytes", len(c.Text))
	}
	return c, nil
}

// Interaction is the part of an interaction payload the gateway passes on.
type Interaction struct {
	Type        string
	TeamID      string
	ChannelID   string
	UserID      string
	ActionID    string
	BlockID     string
	Value       string
	ResponseURL string
	TriggerID   string
	MessageTS   string
	ActionTS    string
}

type interactionJSON struct {
	Type string `json:"type"`
	Team struct {
		ID string `json:"id"`
	} `json:"team"`
	User struct {
		ID     string `json:"id"`
		TeamID string `json:"team_id"`
	} `json:"user"`
	Channel struct {
		ID string `json:"id"`
	} `json:"channel"`
	Container struct {
		ChannelID string `json:"channel_id"`
		MessageTS string `json:"message_ts"`
	} `json:"container"`
	Message struct {
		TS string `json:"ts"`
	} `json:"message"`
	Actions []struct {
		ActionID string `json:"action_id"`
		BlockID  string `json:"block_id"`
		Value    string `json:"value"`
		ActionTS string `json:"action_ts"`
	} `json:"actions"`
	ResponseURL string `json:"response_url"`
	TriggerID   string `json:"trigger_id"`
}

// ParseInteraction reads an interaction's form body (one field, payload,
// holding JSON).
func ParseInteraction(body []byte) (Interaction, error) {
	f, err := url.ParseQuery(string(body))
	if err != nil {
		return Interaction{}, badf("interaction body is not a form")
	}
	raw := f.Get("payload")
	if raw == "" {
		return Interaction{}, badf("interaction without payload")
	}
	var p interactionJSON
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		return Interaction{}, badf("interaction payload is not JSON")
	}
	in := Interaction{
		Type: p.Type, TeamID: p.Team.ID, ChannelID: p.Channel.ID, UserID: p.User.ID,
		ResponseURL: p.ResponseURL, TriggerID: p.TriggerID, MessageTS: p.Container.MessageTS,
	}
	if in.TeamID == "" {
		in.TeamID = p.User.TeamID
	}
	if in.ChannelID == "" {
		in.ChannelID = p.Container.ChannelID
	}
	if in.MessageTS == "" {
		in.MessageTS = p.Message.TS
	}
	if len(p.Actions) > 0 {
		in.ActionID, in.BlockID, in.Value, in.ActionTS = p.Actions[0].ActionID, p.Actions[0].BlockID, p.Actions[0].Value, p.Actions[0].ActionTS
	}
	if in.Type == "" {
		return Interaction{}, badf("interaction without type")
	}
	if err := checkTeam(in.TeamID); err != nil {
		return Interaction{}, err
	}
	if in.Type == "block_actions" && (in.UserID == "" || in.ActionID == "") {
		return Interaction{}, badf("block_actions without user or action")
	}
	return in, nil
}
