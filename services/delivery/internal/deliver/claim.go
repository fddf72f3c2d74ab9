package deliver

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/crmslack/crmslack/services/delivery/internal/failure"
	"github.com/crmslack/crmslack/services/delivery/internal/pacing"
)

// claim takes the ledger key for r, or tells how to proceed when it is
// taken: a settled Outcome (the key is done), a failure, a retryAfter, or
// inDoubt true when an earlier attempt may have taken effect.
func (d *Deliverer) claim(ctx context.Context, r *run, channel string) (settled *Outcome, inDoubt bool, err error) {
	if r.ours {
		return nil, r.ambiguous, nil
	}
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	rec := LedgerRecord{State: StateClaimed, CommandID: r.cmd.ID, Owner: d.cfg.Owner, ClaimedAt: d.cfg.Now(), Channel: channel}
	if !d.markInflight(r) {
		return nil, false, &retryAfter{d: 200 * time.Millisecond, reason: "another command with the same idempotency key is being delivered"}
	}
	e, created, err := d.ledger.Claim(lctx, r.key, rec)
	if err != nil {
		d.releaseInflight(r)
		return nil, false, err
	}
	r.entry = e
	if created {
		r.ours = true
		return nil, false, nil
	}
	switch e.State {
	case StateDone:
		d.releaseInflight(r)
		out := Outcome{Channel: e.Channel, TS: e.TS, Permalink: e.Permalink, FileIDs: e.FileIDs, Duplicate: e.CommandID != r.cmd.ID}
		return &out, false, nil
	case StateUnknown:
		d.releaseInflight(r)
		return nil, false, failure.New(failure.SlackError,
			"an earlier attempt with idempotency key %q may have reached Slack and could not be checked; not repeated (at most once)", r.cmd.IdempotencyKey)
	}
	// Claimed or completing, by an attempt that is gone or elsewhere.
	if e.Owner != d.cfg.Owner {
		if left := e.ClaimedAt.Add(d.cfg.Lease).Sub(d.cfg.Now()); left > 0 {
			d.releaseInflight(r)
			return nil, false, &retryAfter{d: left, reason: "another delivery instance may still be carrying out this idempotency key"}
		}
	}
	return nil, true, nil
}

// renewAged renews r's claim (its ClaimedAt) when a call started now could
// outlast its lease. If the entry changed, another instance took it over as
// gone: r is no longer its owner, and the attempt starts again from the
// claim.
func (d *Deliverer) renewAged(ctx context.Context, r *run) error {
	if d.cfg.Now().Before(r.entry.ClaimedAt.Add(d.cfg.Lease - d.cfg.SlackTimeout)) {
		return nil
	}
	if err := d.reclaim(ctx, r, r.entry.LedgerRecord, "the claim was taken over while waiting to call Slack"); err != nil {
		if wait := (*retryAfter)(nil); errors.As(err, &wait) {
			r.ours, r.ambiguous = false, false
		}
		return err
	}
	d.metrics.renewedClaims.Inc()
	return nil
}

// takeOver makes an in-doubt entry this run's claim, once the earlier
// attempt is known not to have taken effect.
func (d *Deliverer) takeOver(ctx context.Context, r *run, rec LedgerRecord) error {
	rec.CommandID, rec.Owner = r.cmd.ID, d.cfg.Owner
	if err := d.reclaim(ctx, r, rec, "the ledger entry changed"); err != nil {
		return err
	}
	r.ours, r.ambiguous = true, false
	return nil
}

// reclaim writes rec, claimed now, over r's entry by compare-and-set on its
// revision. An entry that changed meanwhile is a retryAfter (reason): the
// attempt starts again from the claim.
func (d *Deliverer) reclaim(ctx context.Context, r *run, rec LedgerRecord, reason string) error {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	rec.ClaimedAt = d.cfg.Now()
	rev, err := d.ledger.Update(lctx, r.key, rec, r.entry.Revision)
	if err != nil {
		if errors.Is(err, ErrLedgerConflict) {
			d.releaseInflight(r)
			return &retryAfter{d: 50 * time.Millisecond, reason: reason}
		}
		return err
	}
	r.entry = LedgerEntry{LedgerRecord: rec, Revision: rev}
	return nil
}

// record writes the result into this run's claim.
func (d *Deliverer) record(ctx context.Context, r *run, rec LedgerRecord) error {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	rev, err := d.ledger.Update(lctx, r.key, rec, r.entry.Revision)
	if err != nil {
		if errors.Is(err, ErrLedgerConflict) {
			// Another instance took the claim over while this one's call
			// hung past the lease: both may have posted. Nothing to undo;
			// say so loudly.
			d.log.ErrorContext(ctx, "ledger claim taken over during a slow call; the message may be duplicated",
				"command", r.cmd.ID, "key", r.key)
			return nil
		}
		return err
	}
	r.entry = LedgerEntry{LedgerRecord: rec, Revision: rev}
	return nil
}

// unconfirmed applies the policy to a run in doubt that cannot be checked.
// It returns nil to go ahead (at least once), or the failure.
func (d *Deliverer) unconfirmed(ctx context.Context, r *run, why string) error {
	d.metrics.reconciled.WithLabelValues("unconfirmed").Inc()
	if d.cfg.Unconfirmed == AtLeastOnce {
		d.log.WarnContext(ctx, "earlier attempt unconfirmed; repeating it (at least once)", "command", r.cmd.ID, "why", why)
		return d.takeOver(ctx, r, LedgerRecord{State: StateClaimed, Channel: r.channel})
	}
	rec := r.entry.LedgerRecord
	rec.State = StateUnknown
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := d.ledger.Update(lctx, r.key, rec, r.entry.Revision); err != nil && !errors.Is(err, ErrLedgerConflict) {
		return err
	}
	r.ours = false
	return failure.New(failure.SlackError,
		"an earlier attempt may have reached Slack and %s; not repeated (at most once)", why)
}

func (d *Deliverer) markInflight(r *run) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if id, ok := d.inflight[r.key]; ok && id != r.cmd.ID {
		return false
	}
	d.inflight[r.key] = r.cmd.ID
	return true
}

func (d *Deliverer) releaseInflight(r *run) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.inflight[r.key] == r.cmd.ID {
		delete(d.inflight, r.key)
	}
}

// finishSimple records a one-call command's result.
func (d *Deliverer) finishSimple(ctx context.Context, r *run) error {
	rec := r.entry.LedgerRecord
	rec.State, rec.Channel, rec.TS, rec.FileIDs = StateDone, r.outcome.Channel, r.outcome.TS, r.outcome.FileIDs
	return d.record(ctx, r, rec)
}

// slackTS renders t as a Slack timestamp, for history's bounds.
func slackTS(t time.Time) string {
	us := t.UnixMicro()
	return strconv.FormatInt(us/1e6, 10) + "." + fmt.Sprintf("%06d", us%1e6)
}

// clockSkew widens the history search around a claim: Slack's clock and
// ours may disagree.
const clockSkew = 2 * time.Minute

// findPosted searches channel's history around the claim for a message
// carrying r's marker: from the claim to the end of its lease (a claimed
// call starts only while the lease has room for it, claimedCall), widened by
// clockSkew each side, so the channel's newer posts do not push the marker
// past the pages read. It returns the message's ts, or "" when there is
// none; an error of kind unsupported, refused or not found means history
// cannot tell.
func (d *Deliverer) findPosted(ctx context.Context, r *run, token, channel string) (string, error) {
	oldest := slackTS(r.entry.ClaimedAt.Add(-clockSkew))
	latest := slackTS(r.entry.ClaimedAt.Add(d.cfg.Lease + clockSkew))
	k := d.methodKey(r.cmd.Team, "conversations.history")
	cursor := ""
	for range d.cfg.HistoryPages {
		var msgs []HistoryMessage
		var next string
		err := d.call(ctx, "conversations.history", []pacing.Key{k}, k, func(ctx context.Context) error {
			var err error
			msgs, next, err = d.slack.History(ctx, token, channel, oldest, latest, cursor)
			return err
		})
		if err != nil {
			return "", err
		}
		for _, m := range msgs {
			if m.Marker == r.key {
				return m.TS, nil
			}
		}
		if next == "" {
			return "", nil
		}
		cursor = next
	}
	return "", &SlackError{Method: "conversations.history", Kind: KindRefused, Code: "too_much_history",
		Detail: fmt.Sprintf("more than %d pages around the claim", d.cfg.HistoryPages)}
}

// cannotTell reports whether a history error means "history cannot answer"
// rather than "try again".
func cannotTell(err error) bool {
	switch KindOf(err) {
	case KindUnsupported, KindRefused, KindNotFound:
		return true
	}
	return false
}
