package app

import (
	"errors"
	"fmt"
)

// Kinds of refusal, mapped to gRPC codes at the edge (grpcapi).
var (
	ErrInvalid      = errors.New("invalid request")
	ErrDenied       = errors.New("permission denied")
	ErrStale        = errors.New("settings changed since they were read")
	ErrPrecondition = errors.New("not possible now")
)

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}
