package bus

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

var (
	// ErrInvalidEnvelope is wrapped by publish errors for an event whose
	// envelope is missing, or lacks event_id or org_id.
	ErrInvalidEnvelope = errors.New("bus: invalid envelope")
	// ErrInvalidSubject is wrapped by errors for a malformed subject or token.
	ErrInvalidSubject = errors.New("bus: invalid subject")
	// ErrInvalidConfig is wrapped by every Validate error.
	ErrInvalidConfig = errors.New("bus: invalid configuration")
	// ErrPermanent matches (errors.Is) every error made with [Permanent].
	ErrPermanent = errors.New("bus: permanent failure")
	// ErrHandlerPanic matches the error a recovered handler panic becomes.
	ErrHandlerPanic = errors.New("bus: handler panicked")
	// ErrNotHandling is returned by [InProgress] for a context that is not a
	// handler's.
	ErrNotHandling = errors.New("bus: context is not a message handler's")
	// ErrClosed is returned when the bus or the subscription is closed.
	ErrClosed = errors.New("bus: closed")
)

// Permanent marks err as a failure that retrying cannot fix (a record the
// domain refuses, a Slack channel that no longer exists): the message is
// dead-lettered on this delivery. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string        { return "permanent: " + e.err.Error() }
func (e *permanentError) Unwrap() error        { return e.err }
func (e *permanentError) Is(target error) bool { return target == ErrPermanent }

// IsPermanent reports whether err, or an error it wraps, was made with
// [Permanent].
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

// RetryAfter marks err as temporary with its own delay before the next
// delivery, replacing the consumer's back-off schedule for this attempt (use
// it for a Slack 429's Retry-After). The delay is honoured as given, not
// capped or jittered. RetryAfter(nil, d) is nil; d <= 0 means "the schedule".
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{err: err, after: d}
}

type retryAfterError struct {
	err   error
	after time.Duration
}

func (e *retryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.err, e.after)
}
func (e *retryAfterError) Unwrap() error { return e.err }

// retryDelay returns the delay requested with RetryAfter, if any.
func retryDelay(err error) (time.Duration, bool) {
	var ra *retryAfterError
	if errors.As(err, &ra) && ra.after > 0 {
		return ra.after, true
	}
	return 0, false
}

// Unavailable reports whether err means the bus or store cannot be reached
// right now (a request not answered in time, no responders while JetStream
// elects a leader, JetStream answering 503, the connection closed or
// reconnecting) rather than that the work failed. A handler failing with such
// an error is re-run in place within seconds, without counting a delivery.
func Unavailable(err error) bool {
	var apiErr *jetstream.APIError
	switch {
	case err == nil, IsPermanent(err):
		return false
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout),
		errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, nats.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabled),
		errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrConnectionReconnecting),
		errors.Is(err, nats.ErrDisconnected):
		return true
	case errors.As(err, &apiErr):
		return apiErr.Code == http.StatusServiceUnavailable
	}
	return false
}
