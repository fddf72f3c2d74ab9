package deliver

import (
	"context"
	"errors"

	"github.com/crmslack/crmslack/services/delivery/internal/pacing"
)

// poster posts a message (chat.postMessage): resolves the target, claims the key, looks the earlier attempt up in history when in doubt, posts with the key as marker, records the result.
type poster struct{ *Deliverer }

func (d poster) execute(ctx context.Context, r *run) (Outcome, error) {
	cmd, pm := r.cmd, r.cmd.PostMessage
	if r.done {
		return r.outcome, d.finishPost(ctx, r)
	}
	if err := d.check(r, pm.GetText(), pm.GetBlocksJson()); err != nil {
		return Outcome{}, err
	}
	if r.channel == "" {
		ch, err := d.resolve(ctx, cmd, cmd.Target())
		if err != nil {
			return Outcome{}, err
		}
		r.channel = ch
	}
	token, err := d.tokens.Get(ctx, cmd.Org, cmd.Team)
	if err != nil {
		return Outcome{}, err
	}
	keys := []pacing.Key{d.channelKey(cmd.Team, r.channel)}
	if l, ok := d.cfg.Limits.Methods["chat.postMessage"]; ok {
		keys = append(keys, pacing.Key{Name: "m/" + cmd.Team + "/chat.postMessage", Limit: l})
	}
	// The channel's pace is waited out before the claim, not after it: a
	// claim is what a crash leaves in doubt, and every paced lane would
	// otherwise hold one through its wait (each looked up in history, at
	// conversations.history's tier, after a crash).
	if err := d.pacer.Wait(ctx, keys...); err != nil {
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
		channel := r.entry.Channel
		if channel == "" {
			channel = r.channel
		}
		ts, err := d.findPosted(ctx, r, token, channel)
		switch {
		case err != nil && cannotTell(err):
			if err := d.unconfirmed(ctx, r, "the channel's history cannot be read ("+err.Error()+")"); err != nil {
				return Outcome{}, err
			}
		case err != nil:
			return Outcome{}, err
		case ts != "":
			d.metrics.reconciled.WithLabelValues("found").Inc()
			d.log.InfoContext(ctx, "earlier attempt had posted; recording it", "command", cmd.ID, "channel", channel, "ts", ts)
			r.ours = true
			r.channel = channel
			r.done = true
			r.outcome = Outcome{Channel: channel, TS: ts, Duplicate: r.entry.CommandID != cmd.ID}
			r.outcome.Permalink = d.permalink(ctx, token, cmd.Team, channel, ts, pm.GetThreadTs())
			return r.outcome, d.finishPost(ctx, r)
		default:
			d.metrics.reconciled.WithLabelValues("not_found").Inc()
			if err := d.takeOver(ctx, r, LedgerRecord{State: StateClaimed, Channel: r.channel}); err != nil {
				return Outcome{}, err
			}
		}
	}

	var channel, ts string
	err = d.claimedCall(ctx, r, "chat.postMessage", nil, keys[0], func(cctx context.Context) error {
		var err error
		channel, ts, err = d.slack.PostMessage(cctx, token, Post{
			Channel: r.channel, Content: r.content, ThreadTS: pm.GetThreadTs(), UnfurlLinks: pm.GetUnfurlLinks(), Marker: r.key,
		})
		return err
	})
	if err != nil {
		if KindOf(err) == KindAmbiguous {
			r.ambiguous = true
		}
		if f := slackFailure(err, cmd, "channel "+r.channel); f != err {
			return Outcome{}, f // giveUp releases the claim: nothing was posted
		}
		return Outcome{}, err
	}
	if channel == "" {
		channel = r.channel
	}
	r.done = true
	r.channel = channel
	r.outcome = Outcome{Channel: channel, TS: ts}
	r.outcome.Permalink = d.permalink(ctx, token, cmd.Team, channel, ts, pm.GetThreadTs())
	return d.finishPostLater(ctx, r)
}

// finishPostLater starts recording a fresh post's result and returns the
// outcome with the write on its way (Outcome.Recorded waits for it): the
// lane need not wait for the ledger before its next post. If the write
// cannot be started it is made synchronously.
func (d *Deliverer) finishPostLater(ctx context.Context, r *run) (Outcome, error) {
	rec := r.entry.LedgerRecord
	rec.State, rec.Channel, rec.TS, rec.Permalink = StateDone, r.outcome.Channel, r.outcome.TS, r.outcome.Permalink
	wait, err := d.ledger.UpdateAsync(ctx, r.key, rec, r.entry.Revision)
	if err != nil {
		return r.outcome, d.record(ctx, r, rec)
	}
	r.recording = true
	out := r.outcome
	out.recorded = func() error {
		defer d.releaseInflight(r)
		_, err := wait()
		if errors.Is(err, ErrLedgerConflict) {
			d.log.Error("ledger claim taken over during a slow call; the message may be duplicated", "command", r.cmd.ID, "key", r.key)
			return nil
		}
		return err
	}
	return out, nil
}

// finishPost records a post's result in the ledger.
func (d *Deliverer) finishPost(ctx context.Context, r *run) error {
	rec := r.entry.LedgerRecord
	rec.State, rec.Channel, rec.TS, rec.Permalink = StateDone, r.outcome.Channel, r.outcome.TS, r.outcome.Permalink
	return d.record(ctx, r, rec)
}

// permalink returns a message's permalink when enabled: built from the
// team's base once one chat.getPermalink answer taught it (see linkBases),
// asked otherwise. Failures leave it empty, and an API without the method
// turns the feature off. Slack's limit on chat.getPermalink is "special"
// (generous, unpublished): it is not paced, but after a 429 the team's
// permalinks are skipped until the Retry-After has passed, rather than
// delaying the channel's next post.
func (d *Deliverer) permalink(ctx context.Context, token, team, channel, ts, threadTS string) string {
	if !d.permalinks.Load() || ts == "" {
		return ""
	}
	if link := d.linkBases.build(team, channel, ts, threadTS); link != "" {
		return link
	}
	k := d.methodKey(team, "chat.getPermalink")
	if d.pacer.PausedFor(k.Name) > 0 {
		d.metrics.calls.WithLabelValues("chat.getPermalink", "skipped").Inc()
		return ""
	}
	var link string
	err := d.call(ctx, "chat.getPermalink", nil, k, func(cctx context.Context) error {
		var err error
		link, err = d.slack.Permalink(cctx, token, channel, ts)
		return err
	})
	if KindOf(err) == KindUnsupported {
		if d.permalinks.Swap(false) {
			d.log.InfoContext(ctx, "the Slack API has no chat.getPermalink; outcomes will carry no permalink")
		}
	}
	if link != "" {
		d.linkBases.learn(team, channel, ts, threadTS, link)
	}
	return link
}
