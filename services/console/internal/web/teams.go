package web

import (
	"net/http"
	"strings"

	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"

	"github.com/crmslack/crmslack/services/console/internal/session"
)

type teamRow struct {
	ID, Name, Domain, Status, Updated string
	Removable                         bool
}

type teamsData struct {
	Enabled     bool
	ActiveTeams int32
	Teams       []teamRow
}

var teamStatus = map[teamsv1.TeamStatus]string{
	teamsv1.TeamStatus_TEAM_STATUS_ACTIVE:  "Active",
	teamsv1.TeamStatus_TEAM_STATUS_REMOVED: "Supprimée",
	teamsv1.TeamStatus_TEAM_STATUS_BROKEN:  "À reconnecter (jeton refusé par Slack)",
}

func (h *handler) teamsPage(w http.ResponseWriter, r *http.Request, s *session.Session) {
	ctx := r.Context()
	integ, err := h.Teams.GetIntegration(ctx, &teamsv1.GetIntegrationRequest{})
	if err != nil {
		h.fail(w, r, s, "Équipes", err)
		return
	}
	list, err := h.Teams.ListTeams(ctx, &teamsv1.ListTeamsRequest{})
	if err != nil {
		h.fail(w, r, s, "Équipes", err)
		return
	}
	d := teamsData{Enabled: integ.GetEnabled(), ActiveTeams: integ.GetActiveTeams()}
	for _, t := range list.GetTeams() {
		d.Teams = append(d.Teams, teamRow{
			ID: t.GetTeam().GetTeamId(), Name: t.GetTeam().GetName(), Domain: t.GetTeam().GetDomain(),
			Status: teamStatus[t.GetStatus()], Updated: when(t.GetUpdatedAt().AsTime()),
			Removable: s.Claims.Admin() && t.GetStatus() != teamsv1.TeamStatus_TEAM_STATUS_REMOVED,
		})
	}
	h.render(w, r, http.StatusOK, "teams", page{Title: "Équipes", Nav: "teams", Data: d}, s)
}

// install begins the "Add to Slack" flow: the registry's install URL (the
// gateway's, with a signed ticket) sends the browser on to Slack.
func (h *handler) install(w http.ResponseWriter, r *http.Request, s *session.Session) {
	resp, err := h.Teams.BeginInstall(r.Context(), &teamsv1.BeginInstallRequest{TeamHint: strings.TrimSpace(r.PostForm.Get("team_hint"))})
	if err != nil {
		h.fail(w, r, s, "Ajouter à Slack", err)
		return
	}
	http.Redirect(w, r, resp.GetInstallUrl(), http.StatusSeeOther)
}

func (h *handler) removeTeam(w http.ResponseWriter, r *http.Request, s *session.Session) {
	if _, err := h.Teams.RemoveTeam(r.Context(), &teamsv1.RemoveTeamRequest{TeamId: r.PathValue("team")}); err != nil {
		h.fail(w, r, s, "Supprimer une équipe", err)
		return
	}
	http.Redirect(w, r, "/teams?ok=removed", http.StatusSeeOther)
}

func (h *handler) enable(w http.ResponseWriter, r *http.Request, s *session.Session) {
	if _, err := h.Teams.EnableIntegration(r.Context(), &teamsv1.EnableIntegrationRequest{}); err != nil {
		h.fail(w, r, s, "Activer l'intégration", err)
		return
	}
	http.Redirect(w, r, "/teams?ok=enabled", http.StatusSeeOther)
}

func (h *handler) disable(w http.ResponseWriter, r *http.Request, s *session.Session) {
	if _, err := h.Teams.DisableIntegration(r.Context(), &teamsv1.DisableIntegrationRequest{}); err != nil {
		h.fail(w, r, s, "Désactiver l'intégration", err)
		return
	}
	http.Redirect(w, r, "/teams?ok=disabled", http.StatusSeeOther)
}

// activeTeams are the org's active teams, only those memberEmail belongs
// to when set: what a form offers to choose from.
func (h *handler) activeTeams(r *http.Request, memberEmail string) ([]teamOption, error) {
	resp, err := h.Teams.ListTeams(r.Context(), &teamsv1.ListTeamsRequest{MemberEmail: memberEmail})
	if err != nil {
		return nil, err
	}
	var out []teamOption
	for _, t := range resp.GetTeams() {
		if t.GetStatus() == teamsv1.TeamStatus_TEAM_STATUS_ACTIVE {
			out = append(out, teamOption{ID: t.GetTeam().GetTeamId(), Name: t.GetTeam().GetName()})
		}
	}
	return out, nil
}
