package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/crmslack/crmslack/deploy/local/demo"
	"github.com/crmslack/crmslack/libs/slackstandin"
)

// actTimeout bounds a slash command or a click: Slack waits 3 s for the
// app; the pane waits longer so that a slow answer is still shown.
const actTimeout = 10 * time.Second

// maxImmediate bounds the slash answers kept, dropping the oldest.
const maxImmediate = 500

func (s *Server) serveHome(w http.ResponseWriter, r *http.Request) {
	ws := s.cfg.Standin.Workspaces()
	if len(ws) == 0 {
		http.Error(w, "the Slack stand-in has no workspace", http.StatusServiceUnavailable)
		return
	}
	team := ws[0].ID
	if t := r.FormValue("team"); t != "" {
		team = t // the sidebar's "Show": another workspace, person or both
	}
	q := url.Values{}
	for _, k := range []string{"as", "c"} {
		if v := r.FormValue(k); v != "" {
			q.Set(k, v)
		}
	}
	http.Redirect(w, r, "/w/"+url.PathEscape(team)+"?"+q.Encode(), http.StatusSeeOther)
}

func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	p, err := s.page(r)
	if err != nil {
		s.renderError(w, http.StatusNotFound, err)
		return
	}
	p.Flash = r.FormValue("flash")
	p.FlashError = r.FormValue("error") != ""
	s.render(w, "page.html", p)
}

// serveFeed is the message list alone, which the page's script swaps in
// when something changed.
func (s *Server) serveFeed(w http.ResponseWriter, r *http.Request) {
	p, err := s.page(r)
	if err != nil {
		s.renderError(w, http.StatusNotFound, err)
		return
	}
	s.render(w, "feed", p)
}

func (s *Server) render(w http.ResponseWriter, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := s.pages.ExecuteTemplate(w, name, data); err != nil {
		s.cfg.Logger.Error("sandbox page not rendered", "page", name, "err", err)
	}
}

func (s *Server) renderError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = s.pages.ExecuteTemplate(w, "error.html", map[string]any{"Status": status, "Error": err.Error()})
}

// answer ends an action: JSON for the page's script, else back to the
// page with the outcome shown.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, ok bool, msg string) {
	if r.Header.Get("X-Sandbox") == "fetch" {
		status := http.StatusOK
		if !ok {
			status = http.StatusBadRequest
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": ok, "message": msg})
		return
	}
	q := url.Values{"as": {r.FormValue("as")}, "c": {firstNonEmpty(r.PathValue("channel"), r.FormValue("c"))}, "flash": {msg}}
	if !ok {
		q.Set("error", "1")
	}
	team := firstNonEmpty(r.PathValue("team"), r.FormValue("team"))
	http.Redirect(w, r, "/w/"+url.PathEscape(team)+"?"+q.Encode(), http.StatusSeeOther)
}

// serveSlash types a slash command as the person: the stand-in signs it as
// Slack does and sends it to the gateway's real endpoint.
func (s *Server) serveSlash(w http.ResponseWriter, r *http.Request) {
	team, channel, user := r.PathValue("team"), r.PathValue("channel"), r.FormValue("as")
	line := strings.TrimSpace(r.FormValue("text"))
	if line == "" {
		s.answer(w, r, false, "Type a command, e.g. /zcrm help")
		return
	}
	cmd, text := slackstandin.DefaultCommand, line
	if strings.HasPrefix(line, "/") {
		cmd, text, _ = strings.Cut(line, " ")
	}
	ctx, cancel := context.WithTimeout(r.Context(), actTimeout)
	defer cancel()
	started := s.cfg.Now()
	d, err := s.slack.SlashCommand(ctx, s.cfg.AppURL+slackstandin.AppPathCommands, slackstandin.SlashCommand{
		TeamID: team, ChannelID: channel, UserID: user, Command: cmd, Text: text,
	})
	if err != nil {
		s.answer(w, r, false, fmt.Sprintf("The app did not answer %s: %v", cmd, err))
		return
	}
	s.cfg.Logger.Info("sandbox slash command", "team", team, "channel", channel, "user", user, "status", d.StatusCode, "took", d.Duration)
	if d.StatusCode != http.StatusOK {
		s.answer(w, r, false, fmt.Sprintf("The app answered %s with HTTP %d: %s", cmd, d.StatusCode, truncate(string(d.Body), 300)))
		return
	}
	if a, ok := parseImmediate(d.Body); ok {
		a.team, a.channel, a.user, a.at = team, channel, user, started
		s.mu.Lock()
		s.immediate = append(s.immediate, a)
		if len(s.immediate) > maxImmediate {
			s.immediate = s.immediate[len(s.immediate)-maxImmediate:]
		}
		s.mu.Unlock()
	}
	s.answer(w, r, true, fmt.Sprintf("Sent %s %s (%d ms)", cmd, text, d.Duration.Milliseconds()))
}

// parseImmediate reads a slash command's HTTP answer: a message as JSON,
// or plain text, or nothing.
func parseImmediate(body []byte) (immediateAnswer, bool) {
	trimmed := strings.TrimSpace(string(body))
	if trimmed == "" {
		return immediateAnswer{}, false
	}
	var m struct {
		Text         string          `json:"text"`
		Blocks       json.RawMessage `json:"blocks"`
		ResponseType string          `json:"response_type"`
	}
	if json.Unmarshal([]byte(trimmed), &m) != nil {
		return immediateAnswer{text: trimmed}, true
	}
	if m.Text == "" && len(m.Blocks) == 0 {
		return immediateAnswer{}, false
	}
	return immediateAnswer{text: m.Text, blocks: m.Blocks, responseType: m.ResponseType}, true
}

// serveClick clicks a button as the person: a block_actions payload,
// signed, to the gateway's interactions endpoint.
func (s *Server) serveClick(w http.ResponseWriter, r *http.Request) {
	team, channel, user := r.PathValue("team"), r.PathValue("channel"), r.FormValue("as")
	actionID := r.FormValue("action_id")
	if actionID == "" {
		s.answer(w, r, false, "This button has no action_id")
		return
	}
	messageTS := r.FormValue("message_ts")
	ctx, cancel := context.WithTimeout(r.Context(), actTimeout)
	defer cancel()
	d, err := s.slack.BlockAction(ctx, s.cfg.AppURL+slackstandin.AppPathInteractions, slackstandin.BlockAction{
		TeamID: team, ChannelID: channel, UserID: user, MessageTS: messageTS, Ephemeral: messageTS == "",
		ActionID: actionID, BlockID: r.FormValue("block_id"), Value: r.FormValue("value"), Text: firstNonEmpty(r.FormValue("label"), actionID),
	})
	if err != nil {
		s.answer(w, r, false, fmt.Sprintf("The app did not take the click: %v", err))
		return
	}
	s.cfg.Logger.Info("sandbox click", "team", team, "channel", channel, "user", user, "action", actionID, "status", d.StatusCode)
	if d.StatusCode != http.StatusOK {
		s.answer(w, r, false, fmt.Sprintf("The app answered the click with HTTP %d: %s", d.StatusCode, truncate(string(d.Body), 300)))
		return
	}
	s.answer(w, r, true, fmt.Sprintf("Clicked %q", firstNonEmpty(r.FormValue("label"), actionID)))
}

// serveCRM publishes one of the panel's events as the CRM.
func (s *Server) serveCRM(w http.ResponseWriter, r *http.Request) {
	now := s.cfg.Now()
	actor, _ := s.crmUserOf(r.FormValue("team"), r.FormValue("as"))
	var evs []crmEvent
	var summary string
	var err error
	switch r.PathValue("event") {
	case "deal-won":
		evs, summary, err = dealWon(s.cfg.Org, r.FormValue("deal"), actor, now)
	case "missed-call":
		evs, summary, err = missedCall(s.cfg.Org, r.FormValue("contact"), now)
	case "activity":
		owner, ok := s.crmUserOf(r.FormValue("team"), r.FormValue("as"))
		if !ok {
			err = fmt.Errorf("the person shown is not a user of the demo CRM: pick one of %s", demoEmails())
			break
		}
		evs, summary, err = activity(s.cfg.Org, strings.TrimSpace(r.FormValue("subject")), owner, s.cfg.ReminderLead, now)
	case "chart":
		sharer, ok := s.crmUserOf(r.FormValue("team"), r.FormValue("as"))
		if !ok {
			err = fmt.Errorf("the person shown is not a user of the demo CRM: pick one of %s", demoEmails())
			break
		}
		evs, summary, err = chartShared(s.cfg.Org, r.FormValue("team"), r.FormValue("c"), sharer, now)
	case "rule":
		module, id, _ := strings.Cut(r.FormValue("record"), "/")
		evs, summary, err = ruleFired(s.cfg.Org, strings.TrimSpace(r.FormValue("rule")), module, id, actor, now)
	default:
		err = fmt.Errorf("no CRM event %q", r.PathValue("event"))
	}
	if err == nil {
		for _, ev := range evs {
			if err = s.cfg.CRM.Publish(r.Context(), ev.subject, ev.msg); err != nil {
				err = fmt.Errorf("publishing on %s: %w", ev.subject, err)
				break
			}
		}
	}
	if err != nil {
		s.cfg.Logger.Warn("sandbox CRM event not published", "event", r.PathValue("event"), "err", err)
		s.answer(w, r, false, "Not published: "+err.Error())
		return
	}
	s.cfg.Logger.Info("sandbox CRM event published", "event", r.PathValue("event"), "org", s.cfg.Org)
	s.answer(w, r, true, "Published: "+summary)
}

// crmUserOf is the demo CRM user of a Slack person, by email; alice, the
// admin, when there is none.
func (s *Server) crmUserOf(team, user string) (demo.User, bool) {
	for _, ws := range s.cfg.Standin.Workspaces() {
		if ws.ID != team {
			continue
		}
		for _, u := range ws.Users {
			if u.ID == user {
				if cu, ok := demo.UserByEmail(u.Email); ok {
					return cu, true
				}
			}
		}
	}
	return demo.Users()[0], false
}

func demoEmails() string {
	var es []string
	for _, u := range demo.Users() {
		es = append(es, u.Email)
	}
	return strings.Join(es, ", ")
}

// serveEvents streams "change" events (Server-Sent Events) whenever the
// stand-in records a message or a file, for the page to refresh its feed.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	cursor := r.FormValue("cursor")
	if cursor == "" {
		cursor = s.cfg.Standin.ChangeCursor()
	}
	_, _ = fmt.Fprintf(w, "retry: 1000\nevent: hello\ndata: %s\n\n", cursor)
	flusher.Flush()
	for {
		next, err := s.cfg.Standin.WaitForChange(r.Context(), cursor)
		if err != nil {
			return
		}
		cursor = next
		if _, err := fmt.Fprintf(w, "event: change\ndata: %s\n\n", cursor); err != nil {
			return
		}
		flusher.Flush()
	}
}

func (s *Server) serveFile(w http.ResponseWriter, r *http.Request) {
	f, ok := s.cfg.Standin.File(r.PathValue("id"))
	if !ok {
		http.Error(w, "no such file", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", http.DetectContentType(f.Content))
	w.Header().Set("Content-Disposition", "inline; filename="+url.PathEscape(f.Name))
	_, _ = w.Write(f.Content)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
