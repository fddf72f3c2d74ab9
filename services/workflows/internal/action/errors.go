package action

import "github.com/crmslack/crmslack/libs/fault"

// Kinds of refusal, each a libs/fault kind, so the gRPC edge (libs/rpc)
// maps it to the same status code as in every service.
var (
	ErrInvalid      = fault.Invalid
	ErrNotFound     = fault.NotFound
	ErrDenied       = fault.Denied
	ErrPrecondition = fault.Precondition
	// ErrConflict: the action changed since the caller read it.
	ErrConflict = fault.Conflict
	// ErrUnavailable: a dependency (the registry, the bus, the database)
	// failed; a retry may succeed.
	ErrUnavailable = fault.Unavailable
)

// Error is a refusal with a message meant for the caller.
type Error = fault.Error

// Errorf makes an *Error of kind.
func Errorf(kind error, format string, args ...any) error { return fault.Errorf(kind, format, args...) }
