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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crmslack/crmslack/services/delivery/internal/blockcheck"
	"github.com/crmslack/crmslack/services/delivery/internal/command"
	"github.com/crmslack/crmslack/services/delivery/internal/failure"
	"github.com/crmslack/crmslack/services/delivery/internal/ledger"
	"github.com/crmslack/crmslack/services/delivery/internal/pacing"
	"github.com/crmslack/crmslack/services/delivery/internal/slackapi"
	"github.com/crmslack/crmslack/services/delivery/internal/targets"
)

// Slack is the Web API as delivery uses it (*slackapi.Client).
type Slack interface {
	PostMessage(ctx context.Context, token string, m slackapi.Post) (channel, ts string, err error)
	UpdateMessage(ctx context.Context, token, channel, ts string, content slackapi.Content) error
	PostEphemeral(ctx context.Context, token, channel, user string, content slackapi.Content) (string, error)
	LookupByEmail(ctx context.Context, token, email string) (string, error)
	OpenDM(ctx context.Context, token, user string) (string, error)
	History(ctx context.Context, token, channel, oldest, cursor string) ([]slackapi.HistoryMessage, string, error)
	Permalink(ctx context.Context, token, channel, ts string) (string, error)
	GetUploadURL(ctx context.Context, token, filename string, size int) (uploadURL, fileID string, err error)
	Upload(ctx context.Context, token, uploadURL, filename string, content []byte) error
	CompleteUpload(ctx context.Context, token, fileID, title string, channels []string, comment string) error
	CheckResponseURL(raw string) error
	Respond(ctx context.Context, responseURL string, r slackapi.Response) error
}

// Boundary answers whether a team may receive an org's data.
type Boundary interface {
	Check(org, team string) error
}

// Tokens hands out bot tokens (*tokens.Cache).
type Tokens interface {
	Get(ctx context.Context, org, team string) (string, error)
	ReportFailure(ctx context.Context, org, team, slackError string) (refreshed bool, err error)
}

// Ledger is the idempotency record (*ledger.Ledger).
type Ledger interface {
	Claim(ctx context.Context, key string, rec ledger.Record) (ledger.Entry, bool, error)
	Update(ctx context.Context, key string, rec ledger.Record, revision uint64) (uint64, error)
	Release(ctx context.Context, key string, revision uint64) error
}

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

	mu       sync.Mutex
	inflight map[string]string // ledger key → command id, claims being worked on here
	uses     map[string]*urlUses
}

type urlUses struct {
	n     int
	first time.Time
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
	return d
}

func isNotFound(err error) bool { return slackapi.KindOf(err) == slackapi.KindNotFound }

// run is one command's progress through Deliver.
type run struct {
	cmd      *command.Command
	key      string // ledger key
	content  slackapi.Content
	checked  bool
	channel  string
	channels []string

	entry ledger.Entry
	// ours: the entry is this run's claim and its state is known.
	ours bool
	// ambiguous: a call of this run may have taken effect unseen.
	ambiguous bool
	// done: the Slack side is finished; only the recording is left.
	done    bool
	outcome Outcome

	authRetried bool
	attempts    int
	rateLimited int
}

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
	r := &run{cmd: cmd, key: ledger.Key(cmd.Org, cmd.IdempotencyKey)}
	defer d.releaseInflight(r)
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
		var se *slackapi.Error
		switch {
		case errors.As(err, &wait):
			if sleep(ctx, wait.d) != nil {
				return Outcome{}, ErrStopped
			}
		case errors.As(err, &se) && se.Kind == slackapi.KindRateLimited:
			r.rateLimited++
			if r.rateLimited > d.cfg.MaxRateLimited {
				return d.giveUp(r, failure.Wrap(failure.RetriesExhausted, err, "still rate limited after %d tries", r.rateLimited)), nil
			}
			// The pause is in the pacer; the next attempt waits it out.
		case errors.As(err, &se) && se.Kind == slackapi.KindAuth:
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
			rec := r.entry.Record
			rec.State = ledger.Unknown
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
	switch cmd.Kind {
	case command.Post:
		return d.post(ctx, r)
	case command.Update:
		return d.update(ctx, r)
	case command.Ephemeral:
		return d.ephemeral(ctx, r)
	case command.Respond:
		return d.respond(ctx, r)
	case command.Upload:
		return d.upload(ctx, r)
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
	r.content = slackapi.Content{Text: m.Text, Blocks: m.Blocks}
	r.checked = true
	return nil
}

// Pacing keys.

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
	if err := d.pacer.Wait(ctx, keys...); err != nil {
		return err
	}
	select {
	case d.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-d.sem }()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.SlackTimeout)
	defer cancel()
	err := fn(cctx)
	result := "ok"
	if err != nil {
		result = "error"
		var se *slackapi.Error
		if errors.As(err, &se) {
			result = se.Kind.String()
			if se.Kind == slackapi.KindRateLimited {
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
	if slackapi.KindOf(err) == slackapi.KindNotFound {
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
	var se *slackapi.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Kind {
	case slackapi.KindNotFound:
		switch se.Code {
		case "message_not_found":
			return failure.Wrap(failure.TargetNotFound, err, "the message to change is not in %s", target)
		case "file_not_found":
			return failure.Wrap(failure.SlackError, err, "the uploaded file is gone")
		}
		return failure.Wrap(failure.TargetOutsideTeam, err, "%s is not in team %s", target, cmd.Team)
	case slackapi.KindRefused, slackapi.KindUnsupported:
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

// claim takes the ledger key for r, or tells how to proceed when it is
// taken: a settled Outcome (the key is done), a failure, a retryAfter, or
// inDoubt true when an earlier attempt may have taken effect.
func (d *Deliverer) claim(ctx context.Context, r *run, channel string) (settled *Outcome, inDoubt bool, err error) {
	if r.ours {
		return nil, r.ambiguous, nil
	}
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	rec := ledger.Record{State: ledger.Claimed, CommandID: r.cmd.ID, Owner: d.cfg.Owner, ClaimedAt: d.cfg.Now(), Channel: channel}
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
	case ledger.Done:
		d.releaseInflight(r)
		out := Outcome{Channel: e.Channel, TS: e.TS, Permalink: e.Permalink, FileIDs: e.FileIDs, Duplicate: e.CommandID != r.cmd.ID}
		return &out, false, nil
	case ledger.Unknown:
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

// takeOver makes an in-doubt entry this run's claim, once the earlier
// attempt is known not to have taken effect.
func (d *Deliverer) takeOver(ctx context.Context, r *run, rec ledger.Record) error {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	rec.CommandID, rec.Owner, rec.ClaimedAt = r.cmd.ID, d.cfg.Owner, d.cfg.Now()
	rev, err := d.ledger.Update(lctx, r.key, rec, r.entry.Revision)
	if err != nil {
		if errors.Is(err, ledger.ErrConflict) {
			d.releaseInflight(r)
			return &retryAfter{d: 50 * time.Millisecond, reason: "the ledger entry changed"}
		}
		return err
	}
	r.entry = ledger.Entry{Record: rec, Revision: rev}
	r.ours, r.ambiguous = true, false
	return nil
}

// record writes the result into this run's claim.
func (d *Deliverer) record(ctx context.Context, r *run, rec ledger.Record) error {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	rev, err := d.ledger.Update(lctx, r.key, rec, r.entry.Revision)
	if err != nil {
		if errors.Is(err, ledger.ErrConflict) {
			// Another instance took the claim over while this one's call
			// hung past the lease: both may have posted. Nothing to undo;
			// say so loudly.
			d.log.ErrorContext(ctx, "ledger claim taken over during a slow call; the message may be duplicated",
				"command", r.cmd.ID, "key", r.key)
			return nil
		}
		return err
	}
	r.entry = ledger.Entry{Record: rec, Revision: rev}
	return nil
}

// unconfirmed applies the policy to a run in doubt that cannot be checked.
// It returns nil to go ahead (at least once), or the failure.
func (d *Deliverer) unconfirmed(ctx context.Context, r *run, why string) error {
	d.metrics.reconciled.WithLabelValues("unconfirmed").Inc()
	if d.cfg.Unconfirmed == AtLeastOnce {
		d.log.WarnContext(ctx, "earlier attempt unconfirmed; repeating it (at least once)", "command", r.cmd.ID, "why", why)
		return d.takeOver(ctx, r, ledger.Record{State: ledger.Claimed, Channel: r.channel})
	}
	rec := r.entry.Record
	rec.State = ledger.Unknown
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := d.ledger.Update(lctx, r.key, rec, r.entry.Revision); err != nil && !errors.Is(err, ledger.ErrConflict) {
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

// slackTS renders t as a Slack timestamp, for history's oldest bound.
func slackTS(t time.Time) string {
	us := t.UnixMicro()
	return strconv.FormatInt(us/1e6, 10) + "." + fmt.Sprintf("%06d", us%1e6)
}

// clockSkew widens the history search around a claim: Slack's clock and
// ours may disagree.
const clockSkew = 2 * time.Minute

// findPosted searches channel's history since the claim for a message
// carrying r's marker. It returns the message's ts, or "" when there is
// none; an error of kind unsupported, refused or not found means history
// cannot tell.
func (d *Deliverer) findPosted(ctx context.Context, r *run, token, channel string) (string, error) {
	oldest := slackTS(r.entry.ClaimedAt.Add(-clockSkew))
	k := d.methodKey(r.cmd.Team, "conversations.history")
	cursor := ""
	for range d.cfg.HistoryPages {
		var msgs []slackapi.HistoryMessage
		var next string
		err := d.call(ctx, "conversations.history", []pacing.Key{k}, k, func(ctx context.Context) error {
			var err error
			msgs, next, err = d.slack.History(ctx, token, channel, oldest, cursor)
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
	return "", &slackapi.Error{Method: "conversations.history", Kind: slackapi.KindRefused, Code: "too_much_history",
		Detail: fmt.Sprintf("more than %d pages since the claim", d.cfg.HistoryPages)}
}

// cannotTell reports whether a history error means "history cannot answer"
// rather than "try again".
func cannotTell(err error) bool {
	switch slackapi.KindOf(err) {
	case slackapi.KindUnsupported, slackapi.KindRefused, slackapi.KindNotFound:
		return true
	}
	return false
}

func (d *Deliverer) post(ctx context.Context, r *run) (Outcome, error) {
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
			if err := d.takeOver(ctx, r, ledger.Record{State: ledger.Claimed, Channel: r.channel}); err != nil {
				return Outcome{}, err
			}
		}
	}

	keys := []pacing.Key{d.channelKey(cmd.Team, r.channel)}
	if l, ok := d.cfg.Limits.Methods["chat.postMessage"]; ok {
		keys = append(keys, pacing.Key{Name: "m/" + cmd.Team + "/chat.postMessage", Limit: l})
	}
	var channel, ts string
	err = d.call(ctx, "chat.postMessage", keys, keys[0], func(cctx context.Context) error {
		var err error
		channel, ts, err = d.slack.PostMessage(cctx, token, slackapi.Post{
			Channel: r.channel, Content: r.content, ThreadTS: pm.GetThreadTs(), UnfurlLinks: pm.GetUnfurlLinks(), Marker: r.key,
		})
		return err
	})
	if err != nil {
		if slackapi.KindOf(err) == slackapi.KindAmbiguous {
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
	return r.outcome, d.finishPost(ctx, r)
}

// finishPost records a post's result in the ledger.
func (d *Deliverer) finishPost(ctx context.Context, r *run) error {
	rec := r.entry.Record
	rec.State, rec.Channel, rec.TS, rec.Permalink = ledger.Done, r.outcome.Channel, r.outcome.TS, r.outcome.Permalink
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
	if slackapi.KindOf(err) == slackapi.KindUnsupported {
		if d.permalinks.Swap(false) {
			d.log.InfoContext(ctx, "the Slack API has no chat.getPermalink; outcomes will carry no permalink")
		}
	}
	if link != "" {
		d.linkBases.learn(team, channel, ts, threadTS, link)
	}
	return link
}

func (d *Deliverer) update(ctx context.Context, r *run) (Outcome, error) {
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

func (d *Deliverer) ephemeral(ctx context.Context, r *run) (Outcome, error) {
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
	k := d.methodKey(cmd.Team, "chat.postEphemeral")
	var ts string
	err = d.call(ctx, "chat.postEphemeral", []pacing.Key{k}, k, func(cctx context.Context) error {
		var err error
		ts, err = d.slack.PostEphemeral(cctx, token, em.GetChannelId(), em.GetSlackUserId(), r.content)
		return err
	})
	if err != nil {
		if slackapi.KindOf(err) == slackapi.KindAmbiguous {
			r.ambiguous = true
		}
		return Outcome{}, slackFailure(err, cmd, "channel "+em.GetChannelId())
	}
	r.done = true
	r.outcome = Outcome{Channel: em.GetChannelId(), TS: ts}
	return r.outcome, d.finishSimple(ctx, r)
}

// finishSimple records a one-call command's result.
func (d *Deliverer) finishSimple(ctx context.Context, r *run) error {
	rec := r.entry.Record
	rec.State, rec.Channel, rec.TS, rec.FileIDs = ledger.Done, r.outcome.Channel, r.outcome.TS, r.outcome.FileIDs
	return d.record(ctx, r, rec)
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

func (d *Deliverer) respond(ctx context.Context, r *run) (Outcome, error) {
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
	resp := slackapi.Response{
		Text: r.content.Text, Blocks: r.content.Blocks,
		ReplaceOriginal: rm.GetReplaceOriginal(), DeleteOriginal: rm.GetDeleteOriginal(),
	}
	switch rm.GetResponseType().String() {
	case "RESPONSE_TYPE_IN_CHANNEL":
		resp.ResponseType = "in_channel"
	case "RESPONSE_TYPE_EPHEMERAL":
		resp.ResponseType = "ephemeral"
	}
	err = d.call(ctx, "response_url", nil, pacing.Key{Name: "u/" + rm.GetResponseUrl()}, func(cctx context.Context) error {
		return d.slack.Respond(cctx, rm.GetResponseUrl(), resp)
	})
	if err != nil {
		var se *slackapi.Error
		switch {
		case errors.As(err, &se) && se.Kind == slackapi.KindNotFound:
			return Outcome{}, failure.Wrap(failure.ResponseURLExpired, err, "Slack no longer accepts the response_url")
		case errors.As(err, &se) && se.Kind == slackapi.KindAmbiguous:
			r.ambiguous = true
		}
		return Outcome{}, slackFailure(err, cmd, "the response_url")
	}
	r.done = true
	return r.outcome, d.finishSimple(ctx, r)
}

func (d *Deliverer) upload(ctx context.Context, r *run) (Outcome, error) {
	cmd, uf := r.cmd, r.cmd.UploadFile
	if r.done {
		return r.outcome, d.finishSimple(ctx, r)
	}
	if r.channels == nil {
		var chs []string
		for _, t := range cmd.UploadTargets() {
			ch, err := d.resolve(ctx, cmd, t)
			if err != nil {
				return Outcome{}, err
			}
			if !contains(chs, ch) {
				chs = append(chs, ch)
			}
		}
		r.channels = chs
		r.channel = chs[0]
	}
	if strings.TrimSpace(uf.GetInitialComment()) != "" && !r.checked {
		if err := d.check(r, uf.GetInitialComment(), nil); err != nil {
			return Outcome{}, err
		}
	}
	token, err := d.tokens.Get(ctx, cmd.Org, cmd.Team)
	if err != nil {
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
		if r.entry.State == ledger.Claimed {
			// The earlier attempt never got to sharing the file: whatever
			// it uploaded is an orphan nobody sees. Start afresh.
			if err := d.takeOver(ctx, r, ledger.Record{State: ledger.Claimed, Channel: r.channel}); err != nil {
				return Outcome{}, err
			}
		} else {
			r.ours = true // completing: try to complete the same file again
			r.ambiguous = true
		}
	}

	if r.entry.State != ledger.Completing {
		getKey := d.methodKey(cmd.Team, "files.getUploadURLExternal")
		var uploadURL, fileID string
		err = d.call(ctx, "files.getUploadURLExternal", []pacing.Key{getKey}, getKey, func(cctx context.Context) error {
			var err error
			uploadURL, fileID, err = d.slack.GetUploadURL(cctx, token, uf.GetFilename(), len(uf.GetContent()))
			return err
		})
		if err != nil {
			return Outcome{}, slackFailure(err, cmd, "the upload")
		}
		err = d.call(ctx, "upload", nil, pacing.Key{Name: "upload"}, func(cctx context.Context) error {
			return d.slack.Upload(cctx, token, uploadURL, uf.GetFilename(), uf.GetContent())
		})
		if err != nil {
			return Outcome{}, slackFailure(err, cmd, "the upload")
		}
		rec := r.entry.Record
		rec.State, rec.FileIDs, rec.Channel = ledger.Completing, []string{fileID}, r.channel
		if err := d.record(ctx, r, rec); err != nil {
			return Outcome{}, err
		}
	}
	fileID := r.entry.FileIDs[0]
	keys := []pacing.Key{d.methodKey(cmd.Team, "files.completeUploadExternal")}
	for _, ch := range r.channels {
		keys = append(keys, d.channelKey(cmd.Team, ch))
	}
	title := uf.GetTitle()
	if title == "" {
		title = uf.GetFilename()
	}
	err = d.call(ctx, "files.completeUploadExternal", keys, keys[0], func(cctx context.Context) error {
		return d.slack.CompleteUpload(cctx, token, fileID, title, r.channels, r.content.Text)
	})
	var se *slackapi.Error
	switch {
	case err == nil:
	case r.ambiguous && errors.As(err, &se) && se.Code == "file_not_found":
		// Completing a file twice is refused: the earlier attempt did it.
		d.metrics.reconciled.WithLabelValues("found").Inc()
	default:
		if slackapi.KindOf(err) == slackapi.KindAmbiguous {
			r.ambiguous = true
		} else if f := slackFailure(err, cmd, "channel "+strings.Join(r.channels, ",")); f != err {
			// Refused before sharing: a new upload may be tried later.
			r.ambiguous = false
			return Outcome{}, f
		}
		return Outcome{}, err
	}
	r.done = true
	r.outcome = Outcome{Channel: r.channel, FileIDs: []string{fileID}, Duplicate: r.entry.CommandID != cmd.ID}
	return r.outcome, d.finishSimple(ctx, r)
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
