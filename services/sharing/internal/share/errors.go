// Package share is the sharing domain: what a share is, the rules a share
// must pass before anything is sent (the org's integration on, the team
// active, the targets inside the team), the ids that make a retried share
// post nothing twice, and how delivery outcomes add up to a share's
// outcome. Plain Go: no I/O.
package share

import (
	"errors"
	"fmt"
)

// Kinds of refusal. Every error the domain and the app return for a share
// that must not go ahead wraps one of them; the gRPC edge maps each to its
// status code.
var (
	ErrInvalid      = errors.New("invalid argument")
	ErrNotFound     = errors.New("not found")
	ErrDenied       = errors.New("permission denied")
	ErrPrecondition = errors.New("failed precondition")
	ErrConflict     = errors.New("conflict")
	// ErrUnavailable is a dependency failure (the team registry, the query
	// service, the bus, the database) that a retry may fix. It is not a
	// refusal and is not recorded as one.
	ErrUnavailable = errors.New("unavailable")
)

// Error is a refusal or failure with a message meant for the caller: it
// names the reason and never carries a token or CRM data beyond ids.
type Error struct {
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Unwrap makes errors.Is(err, ErrDenied) work.
func (e *Error) Unwrap() error { return e.Kind }

// Errorf makes an Error of kind.
func Errorf(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// IsRefusal reports whether err is a decision about the share (invalid,
// not found, denied, precondition, conflict) rather than a failure to
// decide; refusals are recorded, failures are retried.
func IsRefusal(err error) bool {
	for _, k := range []error{ErrInvalid, ErrNotFound, ErrDenied, ErrPrecondition, ErrConflict} {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}
