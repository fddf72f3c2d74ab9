package deliver

import (
	"context"

	"github.com/crmslack/crmslack/services/delivery/internal/pacing"
)

// updater changes a posted message (chat.update); idempotent, so unclaimed.
type updater struct{ *Deliverer }

func (d updater) execute(ctx context.Context, r *run) (Outcome, error) {
	cmd, um := r.cmd, r.cmd.UpdateMessage
	if err := d.check(r, um.GetText(), um.GetBlocksJson()); err != nil {
		return Outcome{}, err
	}
	token, err := d.tokens.Get(ctx, cmd.Org, cmd.Team)
	if err != nil {
		return Outcome{}, err
	}
	r.channel = um.GetChannelId()
	// chat.update is idempotent: repeating it after a crash or a lost
	// answer changes nothing, so it needs no claim.
	k := d.methodKey(cmd.Team, "chat.update")
	err = d.call(ctx, "chat.update", []pacing.Key{k}, k, func(cctx context.Context) error {
		return d.slack.UpdateMessage(cctx, token, um.GetChannelId(), um.GetTs(), r.content)
	})
	if err != nil {
		return Outcome{}, slackFailure(err, cmd, "channel "+um.GetChannelId())
	}
	return Outcome{Channel: um.GetChannelId(), TS: um.GetTs()}, nil
}
