package deliver

import (
	"context"
	"errors"

	"github.com/crmslack/crmslack/services/delivery/internal/command"
	"github.com/crmslack/crmslack/services/delivery/internal/failure"
	"github.com/crmslack/crmslack/services/delivery/internal/pacing"
	"github.com/crmslack/crmslack/services/delivery/internal/targets"
)

func (d *Deliverer) methodKey(team, method string) pacing.Key {
	return pacing.Key{Name: "m/" + team + "/" + method, Limit: d.cfg.Limits.Methods[method]}
}

func (d *Deliverer) channelKey(team, channel string) pacing.Key {
	return pacing.Key{Name: "c/" + team + "/" + channel, Limit: d.cfg.Limits.Channel}
}

// call paces and makes one Slack call: waits for every key (ctx may end the
// wait), then runs fn with a context of its own bounded by SlackTimeout, so
// a call once started is finished even while delivery stops. A 429 pauses
// pauseKey for its Retry-After.
func (d *Deliverer) call(ctx context.Context, method string, keys []pacing.Key, pauseKey pacing.Key, fn func(ctx context.Context) error) error {
	return d.callFor(ctx, nil, method, keys, pauseKey, fn)
}

// claimedCall is call for the call r's claim guards. Another instance takes
// a claim over as gone once Lease has run since it was made, so the call
// may start only while the lease still has room for all of it (ClaimedAt +
// Lease − SlackTimeout); a claim that aged past that in the waits (the
// pace of other keys, a free slot) is first renewed, by compare-and-set.
func (d *Deliverer) claimedCall(ctx context.Context, r *run, method string, keys []pacing.Key, pauseKey pacing.Key, fn func(ctx context.Context) error) error {
	return d.callFor(ctx, r, method, keys, pauseKey, fn)
}

// callFor is call, for claimed (nil: a call no claim guards): once the
// waits are over, its claim is renewed if it aged (renewAged), and an error
// renewing ends the call before it is made.
func (d *Deliverer) callFor(ctx context.Context, claimed *run, method string, keys []pacing.Key, pauseKey pacing.Key, fn func(ctx context.Context) error) error {
	if err := d.pacer.Wait(ctx, keys...); err != nil {
		return err
	}
	select {
	case d.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-d.sem }()
	if claimed != nil {
		if err := d.renewAged(ctx, claimed); err != nil {
			return err
		}
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.SlackTimeout)
	defer cancel()
	err := fn(cctx)
	result := "ok"
	if err != nil {
		result = "error"
		var se *SlackError
		if errors.As(err, &se) {
			result = se.Kind.String()
			if se.Kind == KindRateLimited {
				d.pacer.Pause(pauseKey, se.RetryAfter)
				d.log.InfoContext(ctx, "rate limited by Slack; pausing that key", "method", method, "key", pauseKey.Name, "retry_after", se.RetryAfter)
			}
		}
	}
	d.metrics.calls.WithLabelValues(method, result).Inc()
	return err
}

// resolverAPI gives the target resolver paced calls with the team's token.
type resolverAPI struct{ d *Deliverer }

type orgKey struct{}

func (a resolverAPI) LookupByEmail(ctx context.Context, team, email string) (string, error) {
	org, _ := ctx.Value(orgKey{}).(string)
	token, err := a.d.tokens.Get(ctx, org, team)
	if err != nil {
		return "", err
	}
	k := a.d.methodKey(team, "users.lookupByEmail")
	var user string
	err = a.d.call(ctx, "users.lookupByEmail", []pacing.Key{k}, k, func(ctx context.Context) error {
		var err error
		user, err = a.d.slack.LookupByEmail(ctx, token, email)
		return err
	})
	return user, err
}

func (a resolverAPI) OpenDM(ctx context.Context, team, user string) (string, error) {
	org, _ := ctx.Value(orgKey{}).(string)
	token, err := a.d.tokens.Get(ctx, org, team)
	if err != nil {
		return "", err
	}
	k := a.d.methodKey(team, "conversations.open")
	var ch string
	err = a.d.call(ctx, "conversations.open", []pacing.Key{k}, k, func(ctx context.Context) error {
		var err error
		ch, err = a.d.slack.OpenDM(ctx, token, user)
		return err
	})
	return ch, err
}

// resolve finds the conversation of a target, turning "not found" into the
// failure the boundary rules call for.
func (d *Deliverer) resolve(ctx context.Context, cmd *command.Command, t targets.Target) (string, error) {
	ch, err := d.resolver.Channel(context.WithValue(ctx, orgKey{}, cmd.Org), cmd.Team, t)
	if err == nil {
		return ch, nil
	}
	if errors.Is(err, targets.ErrNoTarget) {
		return "", failure.Wrap(failure.InvalidMessage, err, "no target")
	}
	if KindOf(err) == KindNotFound {
		if t.Email != "" {
			return "", failure.Wrap(failure.TargetNotFound, err, "no active Slack user with email %s in team %s", t.Email, cmd.Team)
		}
		return "", failure.Wrap(failure.TargetOutsideTeam, err, "%s is not in team %s", t, cmd.Team)
	}
	return "", err
}

// slackFailure turns a refusal from Slack into the command's failure; it
// returns err unchanged when it is worth retrying.
func slackFailure(err error, cmd *command.Command, target string) error {
	var se *SlackError
	if !errors.As(err, &se) {
		return err
	}
	switch se.Kind {
	case KindNotFound:
		switch se.Code {
		case "message_not_found":
			return failure.Wrap(failure.TargetNotFound, err, "the message to change is not in %s", target)
		case "file_not_found":
			return failure.Wrap(failure.SlackError, err, "the uploaded file is gone")
		}
		return failure.Wrap(failure.TargetOutsideTeam, err, "%s is not in team %s", target, cmd.Team)
	case KindRefused, KindUnsupported:
		switch se.Code {
		case "invalid_blocks", "invalid_blocks_format", "msg_too_long", "no_text", "invalid_arguments", "too_many_attachments", "invalid_payload":
			return failure.Wrap(failure.InvalidMessage, err, "Slack refused the message")
		case "not_in_channel":
			return failure.Wrap(failure.SlackError, err, "the app is not a member of %s; invite it to the channel", target)
		case "user_not_in_channel":
			return failure.Wrap(failure.TargetNotFound, err, "the user is not a member of %s", target)
		}
		return failure.Wrap(failure.SlackError, err, "Slack refused the call for %s", target)
	}
	return err
}
