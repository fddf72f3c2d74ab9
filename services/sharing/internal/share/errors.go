// Package share is the sharing domain: what a share is, the rules a share
// must pass before anything is sent (the org's integration on, the team
// active, the targets inside the team), the ids that make a retried share
// post nothing twice, and how delivery outcomes add up to a share's
// outcome. Plain Go: no I/O.
package share

import (
	"errors"

	"github.com/crmslack/crmslack/libs/fault"
)

// Kinds of refusal, each a libs/fault kind, so the gRPC edge maps it to the
// same status code as in every service. Every error the domain and the app
// return for a share that must not go ahead wraps one of them.
var (
	ErrInvalid      = fault.Invalid
	ErrNotFound     = fault.NotFound
	ErrDenied       = fault.Denied
	ErrPrecondition = fault.Precondition
	// ErrConflict: the request id was already used for another share.
	ErrConflict = fault.Exists
	// ErrUnavailable is a dependency failure (the team registry, the query
	// service, the bus, the database) that a retry may fix. It is not a
	// refusal and is not recorded as one.
	ErrUnavailable = fault.Unavailable
)

// Error is a refusal or failure with a message meant for the caller: it
// names the reason and never carries a token or CRM data beyond ids.
type Error = fault.Error

// Errorf makes an Error of kind.
func Errorf(kind error, format string, args ...any) error { return fault.Errorf(kind, format, args...) }

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
