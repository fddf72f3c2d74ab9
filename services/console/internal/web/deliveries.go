package web

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	deliveryv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/delivery/v1"

	"github.com/crmslack/crmslack/services/console/internal/session"
)

// deliveriesPageSize is how many audit rows one page shows.
const deliveriesPageSize = 50

type deliveryRow struct {
	Command, Kind, Team, Channel, Status, Failure, Reason, Origin, Requested, Completed string
	Attempts                                                                            uint32
	Failed                                                                              bool
}

type deliveriesData struct {
	Status string
	Rows   []deliveryRow
	Next   string
	Dead   []deadRow
	// DeadErr says why the dead letters could not be read.
	DeadErr string
}

type deadRow struct {
	Seq                                         uint64
	Team, Kind, Reason, At, Command, Deliveries string
}

var deliveryStatus = map[string]deliveryv1.DeliveryStatus{
	"":          deliveryv1.DeliveryStatus_DELIVERY_STATUS_UNSPECIFIED,
	"succeeded": deliveryv1.DeliveryStatus_DELIVERY_STATUS_SUCCEEDED,
	"failed":    deliveryv1.DeliveryStatus_DELIVERY_STATUS_FAILED,
}

// deliveriesPage is the egress's audit trail of the org: every command's
// outcome, newest first, filtered by status.
func (h *handler) deliveriesPage(w http.ResponseWriter, r *http.Request, s *session.Session) {
	q := r.URL.Query()
	d := deliveriesData{Status: q.Get("status")}
	st, ok := deliveryStatus[d.Status]
	if !ok {
		d.Status, st = "", deliveryv1.DeliveryStatus_DELIVERY_STATUS_UNSPECIFIED
	}
	resp, err := h.Delivery.ListDeliveries(r.Context(), &deliveryv1.ListDeliveriesRequest{Status: st, PageSize: deliveriesPageSize, PageToken: q.Get("page")})
	if err != nil {
		h.fail(w, r, s, "Envois", err)
		return
	}
	for _, x := range resp.GetDeliveries() {
		row := deliveryRow{
			Command: x.GetCommandId(), Kind: x.GetKind(), Team: x.GetTeamId(), Channel: x.GetChannelId(), Origin: x.GetOrigin(),
			Reason: x.GetReason(), Attempts: x.GetAttempts(), Requested: when(x.GetRequestedAt().AsTime()), Completed: when(x.GetCompletedAt().AsTime()),
			Status: "Publié", Failed: x.GetStatus() == deliveryv1.DeliveryStatus_DELIVERY_STATUS_FAILED,
		}
		if row.Failed {
			row.Status = "Échec"
			row.Failure = strings.ToLower(strings.TrimPrefix(x.GetFailureCode().String(), "DELIVERY_FAILURE_CODE_"))
		}
		d.Rows = append(d.Rows, row)
	}
	d.Next = resp.GetNextPageToken()
	if dl, err := h.DeadLetters.ListDeadLetters(r.Context(), &deliveryv1.ListDeadLettersRequest{Limit: deliveriesPageSize}); err != nil {
		_, d.DeadErr = apiError(err)
	} else {
		for _, x := range dl.GetDeadLetters() {
			d.Dead = append(d.Dead, deadRow{Seq: x.GetSequence(), Team: x.GetTeamId(), Kind: x.GetKind(), Reason: x.GetReason(),
				At: when(x.GetDeadLetteredAt().AsTime()), Command: x.GetCommandId(), Deliveries: strconv.FormatUint(uint64(x.GetDeliveries()), 10)})
		}
	}
	h.render(w, r, http.StatusOK, "deliveries", page{Title: "Envois vers Slack", Nav: "deliveries", Data: d}, s)
}

// deadLetterOp is what the console does to dead letters: one (its path
// names it) or every one the page showed.
type deadLetterOp struct {
	title, titleAll string // the error page's title
	ok, okAll       string // the confirmation (flashes)
	do              func(ctx context.Context, c deliveryv1.DeadLetterServiceClient, seq uint64) error
}

var deadLetterOps = map[string]deadLetterOp{
	"replay": { // sends it back to the egress
		title: "Renvoyer une lettre morte", titleAll: "Renvoyer les lettres mortes", ok: "replayed", okAll: "replayed-all",
		do: func(ctx context.Context, c deliveryv1.DeadLetterServiceClient, seq uint64) error {
			_, err := c.ReplayDeadLetter(ctx, &deliveryv1.ReplayDeadLetterRequest{Sequence: seq})
			return err
		},
	},
	"discard": { // removes it for good
		title: "Supprimer une lettre morte", titleAll: "Supprimer les lettres mortes", ok: "discarded", okAll: "discarded-all",
		do: func(ctx context.Context, c deliveryv1.DeadLetterServiceClient, seq uint64) error {
			_, err := c.DiscardDeadLetter(ctx, &deliveryv1.DiscardDeadLetterRequest{Sequence: seq})
			return err
		},
	},
}

// deadLetter runs the path's op on the dead letter the path names and
// answers with the listing and its confirmation, or the error.
func (h *handler) deadLetter(w http.ResponseWriter, r *http.Request, s *session.Session) {
	op, known := deadLetterOps[r.PathValue("op")]
	if !known {
		h.render(w, r, http.StatusNotFound, "error", page{Title: "Lettres mortes", Error: "Action inconnue."}, s)
		return
	}
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil {
		h.render(w, r, http.StatusBadRequest, "error", page{Title: op.title, Error: "Lettre morte inconnue."}, s)
		return
	}
	if err := op.do(r.Context(), h.DeadLetters, seq); err != nil {
		h.fail(w, r, s, op.title, err)
		return
	}
	http.Redirect(w, r, "/deliveries?ok="+op.ok, http.StatusSeeOther)
}

// bulkLimit bounds the dead letters one bulk action takes: a listing's
// largest page.
const bulkLimit = 500

// bulk runs the form's op (action) on the dead letters the page showed, the
// seq fields of its form: what the admin saw, not what arrived since. It
// goes on past a failure and names every one that failed.
func (h *handler) bulk(w http.ResponseWriter, r *http.Request, s *session.Session) {
	op, known := deadLetterOps[r.PostForm.Get("action")]
	if !known {
		h.render(w, r, http.StatusBadRequest, "error", page{Title: "Lettres mortes", Error: "Action inconnue."}, s)
		return
	}
	seqs := r.PostForm["seq"]
	if len(seqs) == 0 || len(seqs) > bulkLimit {
		h.render(w, r, http.StatusBadRequest, "error", page{Title: op.titleAll, Error: fmt.Sprintf("Entre 1 et %d lettres mortes à la fois.", bulkLimit)}, s)
		return
	}
	var failed []string
	for _, v := range seqs {
		seq, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			failed = append(failed, v+" : numéro inconnu")
			continue
		}
		if err := op.do(r.Context(), h.DeadLetters, seq); err != nil {
			_, msg := apiError(err)
			failed = append(failed, v+" : "+msg)
		}
	}
	if len(failed) > 0 {
		h.render(w, r, http.StatusConflict, "error", page{Title: op.titleAll,
			Error: fmt.Sprintf("%d sur %d en échec — %s", len(failed), len(seqs), strings.Join(failed, " ; "))}, s)
		return
	}
	http.Redirect(w, r, "/deliveries?ok="+op.okAll, http.StatusSeeOther)
}
