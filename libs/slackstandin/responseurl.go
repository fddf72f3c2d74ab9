package slackstandin

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"
)

// Slack's response_url limits.
const (
	responseURLUses     = 5
	responseURLLifetime = 30 * time.Minute
	maxResponseBody     = 1 << 20
)

// responseURL is a minted response_url, bound to a user in a channel and,
// for interactions, to the message the user clicked in.
type responseURL struct {
	team, channel, user, messageTS string
	created                        time.Time
	uses                           int
}

// NewResponseURL mints a response_url for userID in channelID of teamID, as
// Slack puts in slash command and interaction payloads. It is an absolute
// URL once the server is started or Config.PublicURL is set.
func (s *Server) NewResponseURL(teamID, channelID, userID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dirty++
	return s.newResponseURLLocked(replyToCommand, teamID, channelID, userID, "")
}

// What a response_url replies to: its first path segment, as on
// hooks.slack.com.
const (
	replyToCommand     = "commands"
	replyToInteraction = "actions"
)

// newResponseURLLocked mints a URL of Slack's shape,
// /<kind>/<team>/<n>/<secret>, so an app's check of Slack's reply paths
// holds against the stand-in as it does against hooks.slack.com.
func (s *Server) newResponseURLLocked(kind, teamID, channelID, userID, messageTS string) string {
	id := randomString(idAlphabet+"abcdefghijklmnopqrstuvwxyz", 24)
	s.responses[id] = &responseURL{team: teamID, channel: channelID, user: userID, messageTS: messageTS, created: s.now()}
	return s.baseURL + "/" + kind + "/" + teamID + "/" + randomString("0123456789", 13) + "/" + id
}

// responseURLID is the id of a response_url minted by newResponseURLLocked.
func responseURLID(raw string) (string, bool) {
	for _, kind := range []string{replyToCommand, replyToInteraction} {
		if _, rest, ok := strings.Cut(raw, "/"+kind+"/"); ok {
			parts := strings.Split(rest, "/")
			if len(parts) == 3 && parts[2] != "" {
				return parts[2], true
			}
		}
	}
	return "", false
}

// responsePayload is what an app POSTs to a response_url.
type responsePayload struct {
	Text            string          `json:"text"`
	Blocks          json.RawMessage `json:"blocks"`
	Attachments     json.RawMessage `json:"attachments"`
	ResponseType    string          `json:"response_type"`
	ReplaceOriginal json.RawMessage `json:"replace_original"`
	DeleteOriginal  json.RawMessage `json:"delete_original"`
	ThreadTS        string          `json:"thread_ts"`
}

// serveResponseURL accepts POST /commands/{team}/{n}/{id} and
// /actions/{team}/{n}/{id}: at most five uses within
// thirty minutes, Block Kit checked as for chat.postMessage.
func (s *Server) serveResponseURL(w http.ResponseWriter, r *http.Request) {
	if s.interfere(w, r, "response_url") {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxResponseBody))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, obj{"ok": false, "error": "invalid_payload"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ru := s.responses[r.PathValue("id")]
	switch {
	case ru == nil || s.now().Sub(ru.created) >= responseURLLifetime:
		writeJSON(w, http.StatusNotFound, obj{"ok": false, "error": "expired_url"})
		return
	case ru.uses >= responseURLUses:
		writeJSON(w, http.StatusNotFound, obj{"ok": false, "error": "used_url"})
		return
	}
	var p responsePayload
	if err := json.Unmarshal(body, &p); err != nil {
		writeJSON(w, http.StatusBadRequest, obj{"ok": false, "error": "invalid_payload"})
		return
	}
	replace, del := jsonFlag(p.ReplaceOriginal), jsonFlag(p.DeleteOriginal)
	ct, err := readContent(p.Text, jsonDoc(p.Blocks), jsonDoc(p.Attachments))
	if err == nil && ct.empty() && !del {
		err = errCode("no_text")
	}
	if err != nil {
		var ae *apiError
		errors.As(err, &ae)
		resp := obj{"ok": false, "error": ae.code}
		if len(ae.messages) > 0 {
			resp["response_metadata"] = obj{"messages": ae.messages}
		}
		writeJSON(w, http.StatusBadRequest, resp)
		return
	}
	ru.uses++
	s.applyResponse(ru, p, ct, replace, del)
	writeJSON(w, http.StatusOK, obj{"ok": true})
}

// applyResponse changes the channel as Slack would and records the message.
func (s *Server) applyResponse(ru *responseURL, p responsePayload, ct content, replace, del bool) {
	t := s.st.teams[ru.team]
	bot := ""
	if t != nil {
		bot = t.ws.Bot.UserID
	}
	responseType := p.ResponseType
	if responseType == "" {
		responseType = "ephemeral"
	}
	m := Message{
		Kind: KindResponseURL, Team: ru.team, Channel: ru.channel, User: ru.user, Author: bot,
		ThreadTS: p.ThreadTS, Text: ct.text, Blocks: ct.blocks, Attachments: ct.attachments,
		ResponseType: responseType, ReplaceOriginal: replace, DeleteOriginal: del,
	}
	original := s.st.posted[ru.channel+"/"+ru.messageTS]
	switch {
	case (del || replace) && ru.messageTS != "":
		m.TS = ru.messageTS
		if original != nil && del {
			original.deleted = true
		} else if original != nil {
			original.text, original.blocks, original.attachments = ct.text, ct.blocks, ct.attachments
		}
	case responseType == "in_channel":
		m.TS = s.nextTS()
		s.st.addPosted(&posted{
			team: ru.team, channel: ru.channel, ts: m.TS, threadTS: p.ThreadTS, author: bot,
			text: ct.text, blocks: ct.blocks, attachments: ct.attachments,
		})
	default:
		m.TS = s.nextTS()
	}
	s.recordLocked(m)
}

// jsonFlag reads a boolean Slack accepts as true or "true".
func jsonFlag(raw json.RawMessage) bool {
	v := strings.Trim(string(raw), `"`)
	return v == "true" || v == "1"
}

// jsonDoc accepts a JSON document inline or encoded in a string.
func jsonDoc(raw json.RawMessage) []byte {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []byte(s)
	}
	if string(raw) == "null" {
		return nil
	}
	return raw
}
