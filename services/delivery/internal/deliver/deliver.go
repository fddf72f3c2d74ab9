// Package deliver carries out one Slack command to its end: checks it (data
// boundary, Block Kit, target), makes the Slack calls inside the pacing
// limits, retries what can be retried, and returns the outcome to report.
//
// # Retries
//
//   - 429: the Retry-After pauses exactly the key Slack limited (the
//     channel for chat.postMessage, the workspace's method otherwise) and
//     the call is tried again; not counted as a failed attempt (but bounded).
//   - 5xx, network errors, registry or ledger hiccups: exponential back-off
//     with jitter, up to Config.MaxAttempts, then RETRIES_EXHAUSTED.
//   - invalid_auth / token_expired / ...: the registry is told once
//     (ReportTokenFailure); with a refreshed token the call is tried once
//     more, otherwise, or if it fails again, AUTH. Never a loop.
//
// # At most once
//
// Posting is not idempotent at Slack, so a post is bracketed by the ledger:
// a create-only claim before, the result after. A command that finds its key
// claimed without a result cannot know whether the earlier attempt posted
// (the process died, or the network failed, between Slack's answer and the
// ledger write). It does not post blindly: every post carries the ledger key
// in its message metadata, and the channel's history since the claim is
// searched for it (conversations.history with include_all_metadata). Found:
// the earlier post is recorded as the result. Not found: the claim is taken
// over and the message posted. If history cannot be read (method or scope
// missing), Config.Unconfirmed decides: fail (at most once, the default) or
// repost (at least once). Ephemeral messages and response_url replies leave
// no history, so the same policy applies to them directly; uploads are
// checked by completing the upload again (a completed file cannot be
// completed twice).
package deliver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crmslack/crmslack/services/delivery/internal/blockcheck"
	"github.com/crmslack/crmslack/services/delivery/internal/command"
	"github.com/crmslack/crmslack/services/delivery/internal/failure"
	"github.com/crmslack/crmslack/services/delivery/internal/pacing"
	"github.com/crmslack/crmslack/services/delivery/internal/targets"
)

// Policy is what to do with a command whose earlier attempt may have
// reached Slack when that cannot be checked.
type Policy string

// Policies.
const (
	// AtMostOnce reports the command failed and does not repeat it.
	AtMostOnce Policy = "fail"
	// AtLeastOnce repeats it, accepting a possible duplicate.
	AtLeastOnce Policy = "repost"
)

// Limits are the pacing limits.
type Limits struct {
	// Channel is chat.postMessage per channel.
	Channel pacing.Limit
	// Methods are per workspace, by Web API method name; a method not
	// listed is not paced (it still honours 429s).
	Methods map[string]pacing.Limit
}

// DefaultMethodLimits are Slack's published tiers for the methods delivery
// calls. chat.postMessage is "special" (per channel, see Limits.Channel;
// several hundred a minute per workspace); chat.getPermalink is "special"
// too (generous, unpublished) and not paced: after a 429 its calls are
// skipped until the Retry-After has passed.
func DefaultMethodLimits() map[string]pacing.Limit {
	return map[string]pacing.Limit{
		"chat.update":                  pacing.PerMinute(50),
		"chat.postEphemeral":           pacing.PerMinute(100),
		"conversations.open":           pacing.PerMinute(50),
		"conversations.history":        pacing.PerMinute(50),
		"users.lookupByEmail":          pacing.PerMinute(50),
		"files.getUploadURLExternal":   pacing.PerMinute(100),
		"files.completeUploadExternal": pacing.PerMinute(100),
	}
}

// Config tunes a Deliverer. Zero values take the documented defaults.
type Config struct {
	// Owner identifies this process in ledger claims. Required.
	Owner string
	// MaxAttempts bounds failed attempts (5xx, network) of one command.
	// Default 6.
	MaxAttempts int
	// BackoffBase and BackoffMax shape the exponential back-off between
	// failed attempts. Defaults 500ms and 30s.
	BackoffBase, BackoffMax time.Duration
	// MaxRateLimited bounds 429s for one command before it fails. Default 50.
	MaxRateLimited int
	// SlackTimeout bounds each Slack call. Default 15s.
	SlackTimeout time.Duration
	// Lease is how long another process's claim is presumed to be in
	// flight. Must exceed SlackTimeout. Default SlackTimeout plus half of
	// it, at least 1s more.
	Lease time.Duration
	// Unconfirmed is the policy when an earlier attempt may have posted and
	// it cannot be checked. Default AtMostOnce.
	Unconfirmed Policy
	// HistoryPages bounds the history pages read to find a marker.
	// Default 5 (1,000 messages).
	HistoryPages int
	// Concurrency bounds Slack calls in flight. Default 32.
	Concurrency int
	// Limits are the pacing limits.
	Limits Limits
	// Permalinks asks chat.getPermalink for every post. Default off; turned
	// off by itself when the API does not have the method.
	Permalinks bool
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 6
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = 500 * time.Millisecond
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 30 * time.Second
	}
	if c.MaxRateLimited <= 0 {
		c.MaxRateLimited = 50
	}
	if c.SlackTimeout <= 0 {
		c.SlackTimeout = 15 * time.Second
	}
	if c.Lease <= c.SlackTimeout {
		c.Lease = c.SlackTimeout + max(c.SlackTimeout/2, time.Second)
	}
	if c.Unconfirmed == "" {
		c.Unconfirmed = AtMostOnce
	}
	if c.HistoryPages <= 0 {
		c.HistoryPages = 5
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 32
	}
	if c.Limits.Methods == nil {
		c.Limits.Methods = DefaultMethodLimits()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Outcome is how a command ended.
type Outcome struct {
	// Failure is set when the command was not (or not surely) carried out.
	Failure *failure.Error
	// Channel, TS and Permalink locate the message (TS empty for uploads
	// and response_url replies).
	Channel, TS, Permalink string
	FileIDs                []string
	// Duplicate: the idempotency key had already been carried out by
	// another command; this outcome replays its result.
	Duplicate bool
	// Attempts counts calls that failed and were retried, plus one.
	Attempts uint32

	// recorded waits for the ledger write of a post's result, still on
	// its way when Deliver returned; nil when there is none.
	recorded func() error
}

// Recorded waits until the outcome's result is in the ledger. The caller
// must call it before acknowledging the command: an error means the result
// may not be recorded, and the command must be handed back (its redelivery
// finds the post in the channel's history).
func (o Outcome) Recorded() error {
	if o.recorded == nil {
		return nil
	}
	return o.recorded()
}

// ErrStopped is returned by Deliver when its context ended before the
// command was settled; the message must be handed back, not acknowledged.
var ErrStopped = errors.New("delivery stopped before the command was settled")

// Deliverer carries out commands. Safe for concurrent use; commands of one
// lane must be given to it one at a time.
type Deliverer struct {
	cfg      Config
	slack    Slack
	boundary Boundary
	tokens   Tokens
	ledger   Ledger
	pacer    *pacing.Pacer
	resolver *targets.Resolver
	sem      chan struct{}
	log      *slog.Logger
	metrics  *Metrics

	permalinks atomic.Bool
	linkBases  *linkBases
	executors  map[command.Kind]executor

	mu       sync.Mutex
	inflight map[string]string // ledger key → command id, claims being worked on here
	uses     map[string]*urlUses
}

// New returns a Deliverer.
func New(cfg Config, slack Slack, boundary Boundary, tokens Tokens, led Ledger, pacer *pacing.Pacer, m *Metrics, log *slog.Logger) *Deliverer {
	cfg = cfg.withDefaults()
	d := &Deliverer{
		cfg: cfg, slack: slack, boundary: boundary, tokens: tokens, ledger: led, pacer: pacer,
		sem: make(chan struct{}, cfg.Concurrency), log: log, metrics: m,
		inflight: map[string]string{}, uses: map[string]*urlUses{},
	}
	d.permalinks.Store(cfg.Permalinks)
	d.linkBases = newLinkBases(cfg.Now)
	d.resolver = targets.New(resolverAPI{d}, isNotFound, targets.Config{Now: cfg.Now})
	d.executors = map[command.Kind]executor{
		command.Post: poster{d}, command.Update: updater{d}, command.Ephemeral: ephemeralPoster{d},
		command.Respond: responder{d}, command.Upload: uploader{d},
	}
	return d
}

func isNotFound(err error) bool { return KindOf(err) == KindNotFound }

// executor carries out one kind of command: one attempt of a run, on the
// Deliverer's calls (pacing, Slack) and its ledger protocol (claim.go). An
// error is a failure (failure.Error), a wait (retryAfter), or a temporary
// error retried by Deliver.
type executor interface {
	execute(ctx context.Context, r *run) (Outcome, error)
}

// run is one command's progress through Deliver.
type run struct {
	cmd      *command.Command
	key      string // ledger key
	content  Content
	checked  bool
	channel  string
	channels []string

	entry LedgerEntry
	// ours: the entry is this run's claim and its state is known.
	ours bool
	// ambiguous: a call of this run may have taken effect unseen.
	ambiguous bool
	// done: the Slack side is finished; only the recording is left.
	done    bool
	outcome Outcome

	// recording: the result's ledger write is on its way (Outcome.Recorded
	// releases the key).
	recording bool

	authRetried bool
	attempts    int
	rateLimited int
	unavailable int // attempts the ledger could not be reached for (not counted in attempts)
}

// unavailableRetry is the pause before repeating an attempt the ledger was
// out of reach for.
const unavailableRetry = 500 * time.Millisecond

// retryAfter asks the loop to wait d and try again, without counting an
// attempt (a claim in flight elsewhere).
type retryAfter struct {
	d      time.Duration
	reason string
}

func (e *retryAfter) Error() string { return fmt.Sprintf("waiting %s: %s", e.d, e.reason) }

// Deliver carries cmd out and returns its outcome. It returns ErrStopped
// when ctx ends first; calls already made to Slack are finished and recorded
// before it returns (they do not depend on ctx).
func (d *Deliverer) Deliver(ctx context.Context, cmd *command.Command) (Outcome, error) {
	r := &run{cmd: cmd, key: LedgerKey(cmd.Org, cmd.IdempotencyKey)}
	defer func() {
		if !r.recording {
			d.releaseInflight(r)
		}
	}()
	for {
		if ctx.Err() != nil {
			return Outcome{}, ErrStopped
		}
		out, err := d.safeAttempt(ctx, r)
		if err == nil {
			out.Attempts = uint32(r.attempts + 1)
			return out, nil
		}
		if f, ok := failure.As(err); ok {
			return d.giveUp(r, f), nil
		}
		if ctx.Err() != nil {
			return Outcome{}, ErrStopped
		}
		var wait *retryAfter
		var se *SlackError
		switch {
		case errors.As(err, &wait):
			if sleep(ctx, wait.d) != nil {
				return Outcome{}, ErrStopped
			}
		case errors.As(err, &se) && se.Kind == KindRateLimited:
			r.rateLimited++
			if r.rateLimited > d.cfg.MaxRateLimited {
				return d.giveUp(r, failure.Wrap(failure.RetriesExhausted, err, "still rate limited after %d tries", r.rateLimited)), nil
			}
			// The pause is in the pacer; the next attempt waits it out.
		case errors.As(err, &se) && se.Kind == KindAuth:
			if r.authRetried {
				return d.giveUp(r, failure.Wrap(failure.Auth, err, "Slack refused the bot token of team %s again after a refresh", cmd.Team)), nil
			}
			r.authRetried = true
			refreshed, rerr := d.tokens.ReportFailure(context.WithoutCancel(ctx), cmd.Org, cmd.Team, se.Code)
			if rerr != nil {
				d.log.WarnContext(ctx, "reporting a token failure to the registry failed", "team", cmd.Team, "err", rerr)
			}
			if !refreshed {
				return d.giveUp(r, failure.Wrap(failure.Auth, err, "Slack refused the bot token of team %s and the registry has no new one", cmd.Team)), nil
			}
			d.metrics.tokenRefreshes.Inc()
		case errors.Is(err, ErrUnavailable):
			// Not the command's failure: retried in place, as libs/bus
			// retries its handlers, however long the election lasts.
			if r.unavailable++; r.unavailable == 1 {
				d.log.WarnContext(ctx, "ledger unavailable; retrying in place", "command", cmd.ID, "err", err)
			}
			if sleep(ctx, unavailableRetry) != nil {
				return Outcome{}, ErrStopped
			}
		default:
			r.attempts++
			if r.attempts >= d.cfg.MaxAttempts {
				out := d.giveUp(r, failure.Wrap(failure.RetriesExhausted, err, "gave up after %d attempts", r.attempts))
				out.Attempts = uint32(r.attempts) // the last failed try is counted already
				return out, nil
			}
			delay := d.backoff(r.attempts)
			d.log.WarnContext(ctx, "delivery attempt failed; retrying", "command", cmd.ID, "kind", cmd.Kind,
				"attempt", r.attempts, "retry_in", delay, "err", err)
			if sleep(ctx, delay) != nil {
				return Outcome{}, ErrStopped
			}
		}
	}
}

// giveUp ends a run with f. A claim this run holds is released when no call
// of it can have taken effect, and marked unknown otherwise.
func (d *Deliverer) giveUp(r *run, f *failure.Error) Outcome {
	if r.ours && r.entry.Revision != 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if r.ambiguous {
			rec := r.entry.LedgerRecord
			rec.State = StateUnknown
			if _, err := d.ledger.Update(ctx, r.key, rec, r.entry.Revision); err != nil {
				d.log.Warn("marking a ledger claim unknown failed", "key", r.key, "err", err)
			}
		} else if err := d.ledger.Release(ctx, r.key, r.entry.Revision); err != nil {
			d.log.Warn("releasing a ledger claim failed", "key", r.key, "err", err)
		}
	}
	return Outcome{Failure: f, Channel: r.channel, Attempts: uint32(r.attempts + 1)}
}

// backoff is the delay after failed attempt n: exponential from BackoffBase,
// capped at BackoffMax, "equal jitter" (half fixed, half random).
func (d *Deliverer) backoff(n int) time.Duration {
	b := d.cfg.BackoffBase << min(n-1, 20)
	if b > d.cfg.BackoffMax || b <= 0 {
		b = d.cfg.BackoffMax
	}
	return b/2 + rand.N(b/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// safeAttempt runs attempt, turning a panic into a temporary error: it is
// logged with its stack and counted as a failed attempt, so a command that
// always panics ends as RETRIES_EXHAUSTED instead of taking the process down.
func (d *Deliverer) safeAttempt(ctx context.Context, r *run) (out Outcome, err error) {
	defer func() {
		if p := recover(); p != nil {
			d.log.ErrorContext(ctx, "delivery attempt panicked", "command", r.cmd.ID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			out, err = Outcome{}, fmt.Errorf("%w: %v", errPanic, p)
		}
	}()
	return d.attempt(ctx, r)
}

var errPanic = errors.New("panic in a delivery attempt")

// attempt makes one pass over the command; nil error means settled.
func (d *Deliverer) attempt(ctx context.Context, r *run) (Outcome, error) {
	cmd := r.cmd
	// The boundary is checked on every pass, right before any call: a team
	// removed while the command waited must not receive it.
	if !r.done {
		if err := d.boundary.Check(cmd.Org, cmd.Team); err != nil {
			return Outcome{}, err
		}
	}
	if ex, ok := d.executors[cmd.Kind]; ok {
		return ex.execute(ctx, r)
	}
	return Outcome{}, failure.New(failure.InvalidMessage, "unknown command kind %q", cmd.Kind)
}

// check runs the Block Kit check once per run.
func (d *Deliverer) check(r *run, text string, blocks []byte) error {
	if r.checked {
		return nil
	}
	m, err := blockcheck.Check(text, blocks)
	if err != nil {
		return failure.Wrap(failure.InvalidMessage, err, "the message cannot be sent as written")
	}
	r.content = Content{Text: m.Text, Blocks: m.Blocks}
	r.checked = true
	return nil
}

// Pacing keys.
