package app

import (
	"github.com/crmslack/crmslack/libs/fault"
)

// Kinds of refusal; libs/rpc maps each to one gRPC code at the edge.
var (
	ErrInvalid      = fault.Invalid
	ErrDenied       = fault.Denied
	ErrStale        = fault.Conflict
	ErrPrecondition = fault.Precondition
	ErrUnavailable  = fault.Unavailable
)

func invalid(format string, a ...any) error { return fault.Errorf(ErrInvalid, format, a...) }
