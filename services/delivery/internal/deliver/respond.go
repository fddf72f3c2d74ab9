package deliver

import (
	"context"
	"errors"
	"time"

	"github.com/crmslack/crmslack/services/delivery/internal/failure"
	"github.com/crmslack/crmslack/services/delivery/internal/pacing"
)

type urlUses struct {
	n     int
	first time.Time
}

// responseURLUses and responseURLLifetime are Slack's limits on a
// response_url.
const (
	responseURLUses     = 5
	responseURLLifetime = 30 * time.Minute
)

// useResponseURL counts a use of u, refusing the sixth and anything past 30
// minutes (counted from the earliest command for it, the closest known to
// when Slack minted it).
func (d *Deliverer) useResponseURL(u string, requested time.Time) error {
	now := d.cfg.Now()
	if requested.IsZero() || requested.After(now) {
		requested = now
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, v := range d.uses { // forget long-expired URLs as we go
		if now.Sub(v.first) > 2*responseURLLifetime {
			delete(d.uses, k)
		}
	}
	x := d.uses[u]
	if x == nil {
		x = &urlUses{first: requested}
		d.uses[u] = x
	}
	if requested.Before(x.first) {
		x.first = requested
	}
	switch {
	case now.Sub(x.first) >= responseURLLifetime:
		return failure.New(failure.ResponseURLExpired, "the response_url is older than 30 minutes")
	case x.n >= responseURLUses:
		return failure.New(failure.ResponseURLExpired, "the response_url was already used %d times", responseURLUses)
	}
	x.n++
	return nil
}

// responder replies to a response_url, claimed and counted against its 5 uses in 30 minutes.
type responder struct{ *Deliverer }

func (d responder) execute(ctx context.Context, r *run) (Outcome, error) {
	cmd, rm := r.cmd, r.cmd.RespondToURL
	if err := d.slack.CheckResponseURL(rm.GetResponseUrl()); err != nil {
		return Outcome{}, failure.Wrap(failure.InvalidMessage, err, "refusing to send CRM data to that response_url")
	}
	if !rm.GetDeleteOriginal() {
		if err := d.check(r, rm.GetText(), rm.GetBlocksJson()); err != nil {
			return Outcome{}, err
		}
	}
	if r.done {
		return r.outcome, d.finishSimple(ctx, r)
	}
	settled, inDoubt, err := d.claim(ctx, r, "")
	if err != nil {
		return Outcome{}, err
	}
	if settled != nil {
		return *settled, nil
	}
	if inDoubt {
		if err := d.unconfirmed(ctx, r, "a response_url reply cannot be looked up"); err != nil {
			return Outcome{}, err
		}
	}
	if err := d.useResponseURL(rm.GetResponseUrl(), cmd.RequestedAt); err != nil {
		return Outcome{}, err
	}
	resp := Response{
		Text: r.content.Text, Blocks: r.content.Blocks,
		ReplaceOriginal: rm.GetReplaceOriginal(), DeleteOriginal: rm.GetDeleteOriginal(),
	}
	switch rm.GetResponseType().String() {
	case "RESPONSE_TYPE_IN_CHANNEL":
		resp.ResponseType = "in_channel"
	case "RESPONSE_TYPE_EPHEMERAL":
		resp.ResponseType = "ephemeral"
	}
	err = d.claimedCall(ctx, r, "response_url", nil, pacing.Key{Name: "u/" + rm.GetResponseUrl()}, func(cctx context.Context) error {
		return d.slack.Respond(cctx, rm.GetResponseUrl(), resp)
	})
	if err != nil {
		var se *SlackError
		switch {
		case errors.As(err, &se) && se.Kind == KindNotFound:
			return Outcome{}, failure.Wrap(failure.ResponseURLExpired, err, "Slack no longer accepts the response_url")
		case errors.As(err, &se) && se.Kind == KindAmbiguous:
			r.ambiguous = true
		}
		return Outcome{}, slackFailure(err, cmd, "the response_url")
	}
	r.done = true
	return r.outcome, d.finishSimple(ctx, r)
}
