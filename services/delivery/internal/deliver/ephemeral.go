package deliver

import "context"

// ephemeralPoster posts an ephemeral message (chat.postEphemeral), claimed; one in doubt follows the Unconfirmed policy: it leaves no trace to look for.
type ephemeralPoster struct{ *Deliverer }

func (d ephemeralPoster) execute(ctx context.Context, r *run) (Outcome, error) {
	cmd, em := r.cmd, r.cmd.PostEphemeral
	if err := d.check(r, em.GetText(), em.GetBlocksJson()); err != nil {
		return Outcome{}, err
	}
	r.channel = em.GetChannelId()
	token, err := d.tokens.Get(ctx, cmd.Org, cmd.Team)
	if err != nil {
		return Outcome{}, err
	}
	if r.done {
		return r.outcome, d.finishSimple(ctx, r)
	}
	// Paced before the claim, as a post is (post.go).
	k := d.methodKey(cmd.Team, "chat.postEphemeral")
	if err := d.pacer.Wait(ctx, k); err != nil {
		return Outcome{}, err
	}
	settled, inDoubt, err := d.claim(ctx, r, r.channel)
	if err != nil {
		return Outcome{}, err
	}
	if settled != nil {
		return *settled, nil
	}
	if inDoubt {
		// An ephemeral message leaves no trace to look for.
		if err := d.unconfirmed(ctx, r, "ephemeral messages cannot be looked up"); err != nil {
			return Outcome{}, err
		}
	}
	var ts string
	err = d.claimedCall(ctx, r, "chat.postEphemeral", nil, k, func(cctx context.Context) error {
		var err error
		ts, err = d.slack.PostEphemeral(cctx, token, em.GetChannelId(), em.GetSlackUserId(), r.content)
		return err
	})
	if err != nil {
		if KindOf(err) == KindAmbiguous {
			r.ambiguous = true
		}
		return Outcome{}, slackFailure(err, cmd, "channel "+em.GetChannelId())
	}
	r.done = true
	r.outcome = Outcome{Channel: em.GetChannelId(), TS: ts}
	return r.outcome, d.finishSimple(ctx, r)
}
