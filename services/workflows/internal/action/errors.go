package action

import (
	"errors"
	"fmt"
)

// Kinds of refusal; the gRPC edge maps each to one code.
var (
	ErrInvalid      = errors.New("invalid")
	ErrNotFound     = errors.New("not found")
	ErrDenied       = errors.New("denied")
	ErrPrecondition = errors.New("precondition")
	ErrConflict     = errors.New("conflict")
	ErrUnavailable  = errors.New("unavailable")
)

// Error is a refusal said to the caller: Msg is for people.
type Error struct {
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Kind }

// Errorf makes an *Error of kind.
func Errorf(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}
