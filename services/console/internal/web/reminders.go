package web

import (
	"net/http"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	remindersv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/reminders/v1"

	"github.com/crmslack/crmslack/services/console/internal/session"
)

// remindersForm is the signed-in user's own reminder preferences (the
// calendar's Options > Préférences in the seed).
type remindersForm struct {
	Disabled bool
	Team     string
	TimeZone string
	Updated  string
	Teams    []teamOption
	Errors   map[string]string
}

func (h *handler) remindersPage(w http.ResponseWriter, r *http.Request, s *session.Session) {
	resp, err := h.Reminders.GetPreferences(r.Context(), &remindersv1.GetPreferencesRequest{CrmUserId: s.Claims.Subject})
	if err != nil && status.Code(err) != codes.NotFound {
		h.fail(w, r, s, "Rappels", err)
		return
	}
	p := resp.GetPreferences()
	f := &remindersForm{Disabled: !p.GetEnabled(), Team: p.GetTeamId(), TimeZone: p.GetTimeZone(), Updated: when(p.GetUpdatedAt().AsTime())}
	h.reminderTeams(r, s, f)
	h.render(w, r, http.StatusOK, "reminders", page{Title: "Rappels via Slack", Nav: "reminders", Data: f}, s)
}

func (h *handler) reminderTeams(r *http.Request, s *session.Session, f *remindersForm) {
	teams, err := h.activeTeams(r, s.Claims.Email)
	if err != nil {
		_, msg := apiError(err)
		f.setError("team_id", msg)
	}
	f.Teams = teams
}

func (f *remindersForm) setError(field, msg string) {
	if f.Errors == nil {
		f.Errors = map[string]string{}
	}
	f.Errors[field] = msg
}

func (h *handler) saveReminders(w http.ResponseWriter, r *http.Request, s *session.Session) {
	pf := r.PostForm
	f := &remindersForm{Disabled: pf.Get("disabled") == "on", Team: pf.Get("team_id"), TimeZone: strings.TrimSpace(pf.Get("time_zone"))}
	_, err := h.Reminders.SetPreferences(r.Context(), &remindersv1.SetPreferencesRequest{Enabled: !f.Disabled, TeamId: f.Team, TimeZone: f.TimeZone})
	if err == nil {
		http.Redirect(w, r, "/reminders?ok=reminders", http.StatusSeeOther)
		return
	}
	code, msg := apiError(err)
	switch m := status.Convert(err).Message(); {
	case strings.HasPrefix(m, "time_zone"):
		f.setError("time_zone", msg)
	case strings.HasPrefix(m, "team"):
		f.setError("team_id", msg)
	default:
		f.setError("", msg)
	}
	h.reminderTeams(r, s, f)
	h.render(w, r, code, "reminders", page{Title: "Rappels via Slack", Nav: "reminders", Error: "Préférences non enregistrées : voir le champ signalé.", Data: f}, s)
}
