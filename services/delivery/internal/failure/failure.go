// Package failure is the one error type for a command that will not be
// delivered: it carries the DeliveryFailureCode the DeliveryFailed event
// reports and a reason a person can act on. Everything that refuses or
// gives up returns one; retries never produce one.
package failure

import (
	"errors"
	"fmt"

	integrationv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/integration/v1"
)

// Code is the failure classification of the DeliveryFailed event.
type Code = integrationv1.DeliveryFailureCode

// Codes, re-exported for brevity.
const (
	TeamNotRegistered   = integrationv1.DeliveryFailureCode_DELIVERY_FAILURE_CODE_TEAM_NOT_REGISTERED
	IntegrationDisabled = integrationv1.DeliveryFailureCode_DELIVERY_FAILURE_CODE_INTEGRATION_DISABLED
	TargetNotFound      = integrationv1.DeliveryFailureCode_DELIVERY_FAILURE_CODE_TARGET_NOT_FOUND
	TargetOutsideTeam   = integrationv1.DeliveryFailureCode_DELIVERY_FAILURE_CODE_TARGET_OUTSIDE_TEAM
	InvalidMessage      = integrationv1.DeliveryFailureCode_DELIVERY_FAILURE_CODE_INVALID_MESSAGE
	Auth                = integrationv1.DeliveryFailureCode_DELIVERY_FAILURE_CODE_AUTH
	SlackError          = integrationv1.DeliveryFailureCode_DELIVERY_FAILURE_CODE_SLACK_ERROR
	RetriesExhausted    = integrationv1.DeliveryFailureCode_DELIVERY_FAILURE_CODE_RETRIES_EXHAUSTED
	ResponseURLExpired  = integrationv1.DeliveryFailureCode_DELIVERY_FAILURE_CODE_RESPONSE_URL_EXPIRED
)

// Error is a command that will not be delivered.
type Error struct {
	Code   Code
	Reason string
	// Err is the cause, when there is one (a Slack error).
	Err error
}

func (e *Error) Error() string { return e.Code.String() + ": " + e.Reason }

func (e *Error) Unwrap() error { return e.Err }

// New returns a failure with a formatted reason.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// Wrap returns a failure caused by err; the reason ends with err's text.
func Wrap(code Code, err error, format string, args ...any) *Error {
	return &Error{Code: code, Reason: fmt.Sprintf(format, args...) + ": " + err.Error(), Err: err}
}

// As returns the failure in err's chain, if any.
func As(err error) (*Error, bool) {
	var f *Error
	ok := errors.As(err, &f)
	return f, ok
}

// DeadLetter reports whether a failure of this code should also go to the
// dead-letter stream: the ones someone may want to replay once the cause is
// fixed (a token, an outage). Refusals by policy (boundary, invalid
// message, unknown target) are reported and dropped.
func DeadLetter(code Code) bool {
	switch code {
	case Auth, SlackError, RetriesExhausted:
		return true
	}
	return false
}
