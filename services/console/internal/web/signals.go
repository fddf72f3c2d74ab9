package web

import (
	"net/http"
	"strconv"
	"strings"

	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	signalsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/signals/v1"

	"github.com/crmslack/crmslack/services/console/internal/session"
)

// channelWords and kindWords are the seed's French labels of the
// SalesSignals page (Configuration > Canal > SalesSignals); a channel or
// type the API adds later shows the API's own label.
var channelWords = map[crmv1.SignalChannel]string{
	crmv1.SignalChannel_SIGNAL_CHANNEL_CALL:           "Appel",
	crmv1.SignalChannel_SIGNAL_CHANNEL_CHAT:           "Tchat",
	crmv1.SignalChannel_SIGNAL_CHANNEL_EMAIL:          "E-mail",
	crmv1.SignalChannel_SIGNAL_CHANNEL_SUPPORT_TICKET: "Ticket d'assistance",
	crmv1.SignalChannel_SIGNAL_CHANNEL_SOCIAL:         "Réseaux sociaux",
	crmv1.SignalChannel_SIGNAL_CHANNEL_WEBSITE:        "Site web / portail",
	crmv1.SignalChannel_SIGNAL_CHANNEL_SURVEY:         "Enquête",
	crmv1.SignalChannel_SIGNAL_CHANNEL_CAMPAIGN:       "Campagne",
}

var kindWords = map[string]string{
	"missed": "Manqué", "incoming": "Entrant", "outgoing": "Sortant",
	"started": "Démarré", "transcript": "Transcription",
	"received": "Reçu", "opened": "Ouvert", "link_clicked": "Lien cliqué", "bounced": "Non remis", "replied": "Répondu",
	"created": "Créé", "updated": "Mis à jour", "escalated": "Escaladé", "closed": "Fermé",
	"mention": "Mention", "message": "Message",
	"visit": "Visite", "form_submitted": "Formulaire envoyé",
	"response": "Réponse",
}

type signalRow struct {
	Channel, Label, Short string
	Cells                 []signalCell
}

type signalCell struct {
	Value, ID, TestID, Label string
	On, Default              bool
}

type signalsData struct {
	Rows        []signalRow
	Version     int64
	DefaultTeam string
	Teams       []teamOption
	Updated     string
	UpdatedBy   string
}

func (h *handler) signalsPage(w http.ResponseWriter, r *http.Request, s *session.Session) {
	resp, err := h.Signals.GetSettings(r.Context(), &signalsv1.GetSettingsRequest{})
	if err != nil {
		h.fail(w, r, s, "SalesSignals", err)
		return
	}
	st := resp.GetSettings()
	d := signalsData{Version: st.GetVersion(), DefaultTeam: st.GetDefaultTeamId(), Updated: when(st.GetUpdatedAt().AsTime()), UpdatedBy: st.GetUpdatedBy().GetEmail()}
	byChannel := map[crmv1.SignalChannel]int{}
	for _, c := range st.GetCells() {
		i, ok := byChannel[c.GetChannel()]
		if !ok {
			label := channelWords[c.GetChannel()]
			if label == "" {
				label = c.GetChannel().String()
			}
			short := strings.ToLower(strings.TrimPrefix(c.GetChannel().String(), "SIGNAL_CHANNEL_"))
			d.Rows = append(d.Rows, signalRow{Channel: c.GetChannel().String(), Label: label, Short: short})
			i = len(d.Rows) - 1
			byChannel[c.GetChannel()] = i
		}
		row := &d.Rows[i]
		label := kindWords[c.GetKind()]
		if label == "" {
			label = c.GetLabel()
		}
		row.Cells = append(row.Cells, signalCell{
			Value: row.Channel + "/" + c.GetKind(), ID: "signal-" + row.Short + "-" + c.GetKind(), TestID: "signal-" + row.Short + "-" + c.GetKind(),
			Label: label, On: c.GetSlack(), Default: c.GetDefaultSlack(),
		})
	}
	// The default team is any active team of the org.
	if d.Teams, err = h.activeTeams(r, ""); err != nil {
		h.fail(w, r, s, "SalesSignals", err)
		return
	}
	h.render(w, r, http.StatusOK, "signals", page{Title: "Paramètres SalesSignals", Nav: "signals", Data: d}, s)
}

// saveSignals replaces the matrix with the boxes ticked, if nobody changed
// it since the page was read.
func (h *handler) saveSignals(w http.ResponseWriter, r *http.Request, s *session.Session) {
	version, _ := strconv.ParseInt(r.PostForm.Get("version"), 10, 64)
	var cells []*signalsv1.Cell
	for _, v := range r.PostForm["cell"] {
		ch, kind, ok := strings.Cut(v, "/")
		n, known := crmv1.SignalChannel_value[ch]
		if !ok || !known {
			h.render(w, r, http.StatusBadRequest, "error", page{Title: "SalesSignals", Error: "Case inconnue : " + v}, s)
			return
		}
		cells = append(cells, &signalsv1.Cell{Channel: crmv1.SignalChannel(n), Kind: kind, Slack: true})
	}
	if _, err := h.Signals.ReplaceMatrix(r.Context(), &signalsv1.ReplaceMatrixRequest{Cells: cells, ExpectedVersion: version}); err != nil {
		h.fail(w, r, s, "SalesSignals", err)
		return
	}
	http.Redirect(w, r, "/signals?ok=signals-saved", http.StatusSeeOther)
}

func (h *handler) resetSignals(w http.ResponseWriter, r *http.Request, s *session.Session) {
	if _, err := h.Signals.ResetSettings(r.Context(), &signalsv1.ResetSettingsRequest{}); err != nil {
		h.fail(w, r, s, "SalesSignals", err)
		return
	}
	http.Redirect(w, r, "/signals?ok=signals-reset", http.StatusSeeOther)
}

func (h *handler) signalsTeam(w http.ResponseWriter, r *http.Request, s *session.Session) {
	if _, err := h.Signals.SetDefaultTeam(r.Context(), &signalsv1.SetDefaultTeamRequest{TeamId: r.PostForm.Get("team_id")}); err != nil {
		h.fail(w, r, s, "SalesSignals", err)
		return
	}
	http.Redirect(w, r, "/signals?ok=team-saved", http.StatusSeeOther)
}
