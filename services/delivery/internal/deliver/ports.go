package deliver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// The ports of the core: what it needs from Slack, the registry, the data
// boundary and the ledger, in its own types. Adapters (slackapi, tokens,
// boundary, ledger) implement them; the core imports none of them.

// Slack is the Web API as delivery uses it (implemented by slackapi).
type Slack interface {
	PostMessage(ctx context.Context, token string, m Post) (channel, ts string, err error)
	UpdateMessage(ctx context.Context, token, channel, ts string, content Content) error
	PostEphemeral(ctx context.Context, token, channel, user string, content Content) (string, error)
	LookupByEmail(ctx context.Context, token, email string) (string, error)
	OpenDM(ctx context.Context, token, user string) (string, error)
	History(ctx context.Context, token, channel, oldest, latest, cursor string) ([]HistoryMessage, string, error)
	Permalink(ctx context.Context, token, channel, ts string) (string, error)
	GetUploadURL(ctx context.Context, token, filename string, size int) (uploadURL, fileID string, err error)
	Upload(ctx context.Context, token, uploadURL, filename string, content []byte) error
	CompleteUpload(ctx context.Context, token, fileID, title string, channels []string, comment string) error
	CheckResponseURL(raw string) error
	Respond(ctx context.Context, responseURL string, r Response) error
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

// Ledger is the idempotency record (implemented by ledger, on JetStream KV):
// Claim is create-only, Update and Release compare-and-set on the revision
// (ErrLedgerConflict when it moved on).
type Ledger interface {
	Claim(ctx context.Context, key string, rec LedgerRecord) (LedgerEntry, bool, error)
	Update(ctx context.Context, key string, rec LedgerRecord, revision uint64) (uint64, error)
	// UpdateAsync is Update without waiting: wait reports the outcome.
	UpdateAsync(ctx context.Context, key string, rec LedgerRecord, revision uint64) (wait func() (uint64, error), err error)
	Release(ctx context.Context, key string, revision uint64) error
}

// SlackKind classifies a failed Slack call: what to do next.
type SlackKind int

// Kinds of failure.
const (
	// KindTemporary: the call did not take effect (HTTP 5xx, a refused
	// connection, Slack's own internal_error): retry with back-off.
	KindTemporary SlackKind = iota + 1
	// KindAmbiguous: the request may have reached Slack and taken effect
	// (a timeout or a connection lost after sending). Retrying a non-
	// idempotent call blindly could do it twice.
	KindAmbiguous
	// KindRateLimited: HTTP 429; wait RetryAfter before calling this
	// method (for this channel) again.
	KindRateLimited
	// KindAuth: the token does not work (invalid_auth, token_expired,
	// token_revoked, account_inactive, not_authed).
	KindAuth
	// KindNotFound: the target does not exist for this team (channel,
	// user, message, file).
	KindNotFound
	// KindUnsupported: the method does not exist at this API URL.
	KindUnsupported
	// KindRefused: any other Slack error; retrying will not help.
	KindRefused
)

func (k SlackKind) String() string {
	switch k {
	case KindTemporary:
		return "temporary"
	case KindAmbiguous:
		return "ambiguous"
	case KindRateLimited:
		return "rate_limited"
	case KindAuth:
		return "auth"
	case KindNotFound:
		return "not_found"
	case KindUnsupported:
		return "unsupported"
	case KindRefused:
		return "refused"
	}
	return "unknown"
}

// SlackError is a failed Slack call, as the Slack adapter reports it.
type SlackError struct {
	Method string
	Kind   SlackKind
	// Code is Slack's error code ("channel_not_found"), or "http_503",
	// "network" for failures below the API.
	Code string
	// RetryAfter is Slack's Retry-After, for KindRateLimited.
	RetryAfter time.Duration
	// Detail is Slack's response_metadata.messages, joined, when given.
	Detail string
	Err    error
}

func (e *SlackError) Error() string {
	s := e.Method + ": " + e.Code
	if e.Kind == KindRateLimited {
		s += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil && e.Kind != KindRefused && e.Kind != KindNotFound && e.Kind != KindAuth {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *SlackError) Unwrap() error { return e.Err }

// KindOf returns the kind of err, or 0 when err is not a *SlackError.
func KindOf(err error) SlackKind {
	var e *SlackError
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// Content is a message body: the fallback text and the Block Kit blocks.
type Content struct {
	Text   string
	Blocks json.RawMessage
}

// Post is a chat.postMessage.
type Post struct {
	Channel     string
	Content     Content
	ThreadTS    string
	UnfurlLinks bool
	// Marker goes into the message's metadata (the adapter's metadata event type).
	Marker string
}

// HistoryMessage is the part of a channel's message that reconciliation
// needs.
type HistoryMessage struct {
	TS     string
	Marker string
}

// Response is a reply through a response_url.
type Response struct {
	Text            string          `json:"text"`
	Blocks          json.RawMessage `json:"blocks,omitempty"`
	ResponseType    string          `json:"response_type,omitempty"`
	ReplaceOriginal bool            `json:"replace_original,omitempty"`
	DeleteOriginal  bool            `json:"delete_original,omitempty"`
}

// LedgerState is where a command stands in the ledger.
type LedgerState string

// States of an entry.
const (
	// StateClaimed: a delivery is about to call Slack (or did, and was lost).
	StateClaimed LedgerState = "claimed"
	// StateCompleting: an upload's bytes are at Slack under FileID; sharing it
	// (files.completeUploadExternal) may have happened.
	StateCompleting LedgerState = "completing"
	// StateDone: the call happened; the result is recorded.
	StateDone LedgerState = "done"
	// StateUnknown: the call may have happened and could not be checked; the
	// command was reported failed and is not repeated (at most once).
	StateUnknown LedgerState = "unknown"
)

// LedgerRecord is a ledger entry's value.
type LedgerRecord struct {
	State LedgerState `json:"s"`
	// CommandID is the envelope event id of the command that claimed.
	CommandID string `json:"c"`
	// Owner is the delivery instance that claimed, and ClaimedAt when.
	Owner     string    `json:"o"`
	ClaimedAt time.Time `json:"t"`
	Channel   string    `json:"ch,omitempty"`
	TS        string    `json:"ts,omitempty"`
	Permalink string    `json:"pl,omitempty"`
	FileIDs   []string  `json:"f,omitempty"`
}

// LedgerEntry is a record and the revision it was read at.
type LedgerEntry struct {
	LedgerRecord
	Revision uint64
}

// LedgerKey is the ledger key of org's idempotency key: a hash, because
// idempotency keys are arbitrary strings and KV keys are not, and because
// the key also travels in the Slack message's metadata as its marker.
func LedgerKey(org, idempotencyKey string) string {
	// Length-prefixed, so no (org, key) pair can spell another. Built in
	// a stack buffer: the key is made for every command.
	var buf [256]byte
	in := strconv.AppendInt(buf[:0], int64(len(org)), 10)
	in = append(append(append(in, ':'), org...), idempotencyKey...)
	sum := sha256.Sum256(in)
	out := append(buf[:0], 'k')
	return string(hex.AppendEncode(out, sum[:20]))
}

// ErrLedgerConflict is returned by Ledger.Update and Ledger.Release when
// the entry changed since it was read.
var ErrLedgerConflict = errors.New("ledger entry changed since it was read")

// ErrUnavailable marks a port's error as its store being out of reach for
// the moment (a JetStream leader election, a reconnect): nothing was done,
// and Deliver repeats the attempt shortly without counting it against
// MaxAttempts.
var ErrUnavailable = errors.New("unavailable for the moment")
