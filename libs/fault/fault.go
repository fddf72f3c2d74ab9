// Package fault names the kinds of failure a service's domain reports, in
// plain Go with no gRPC import. libs/rpc maps each kind to one gRPC status
// code, the same in every service (see rpc.ToStatus); a domain declares its
// own sentinels as these kinds (var ErrNotFound = fault.NotFound) and
// returns an [*Error] whose message is meant for the caller.
package fault

import (
	"errors"
	"fmt"
)

// The kinds. Each maps to one gRPC code in libs/rpc.
var (
	// Invalid: the request itself is wrong (InvalidArgument).
	Invalid = errors.New("invalid argument")
	// NotFound: what the request names does not exist (NotFound).
	NotFound = errors.New("not found")
	// Denied: the caller may not do this (PermissionDenied).
	Denied = errors.New("permission denied")
	// Precondition: the system is not in a state that allows it, and a
	// retry will not help until something else changes (FailedPrecondition).
	Precondition = errors.New("failed precondition")
	// Conflict: a concurrent change won; reload and retry (Aborted).
	Conflict = errors.New("concurrent update")
	// Exists: what the request would create exists already, or its key was
	// used for something else (AlreadyExists).
	Exists = errors.New("already exists")
	// Unavailable: a dependency failed; a retry may succeed (Unavailable).
	Unavailable = errors.New("unavailable")
)

// Error is a failure of one kind with a message meant for the caller: it
// names the reason and carries no secret.
type Error struct {
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Unwrap makes errors.Is(err, fault.NotFound) work.
func (e *Error) Unwrap() error { return e.Kind }

// Errorf makes an Error of kind.
func Errorf(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}
