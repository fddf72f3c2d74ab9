// Package remote is sharing's adapters to the services it asks: the team
// registry (teams.v1.TeamRegistryService: membership by email, a team's
// directory, a Slack user's profile) and the query service's record
// projection (query.v1.QueryService.GetRecord). Their refusals become share
// errors that keep the callee's message; anything else is unavailable.
package remote

import (
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/crmslack/crmslack/services/sharing/internal/share"
)

// Timeouts of one call. A directory may be read from Slack page by page
// when the registry's cache is cold.
const (
	callTimeout      = 10 * time.Second
	directoryTimeout = 45 * time.Second
)

// classify turns a registry (or query service) error into a share error:
// its refusals keep their kind and message, anything else is unavailable.
func classify(err error, what string) error {
	st, _ := status.FromError(err)
	kind := share.ErrUnavailable
	switch st.Code() {
	case codes.NotFound:
		kind = share.ErrNotFound
	case codes.FailedPrecondition:
		kind = share.ErrPrecondition
	case codes.InvalidArgument:
		kind = share.ErrInvalid
	case codes.PermissionDenied:
		kind = share.ErrDenied
	}
	if kind == share.ErrUnavailable {
		return share.Errorf(kind, "%s: %s (%s)", what, st.Message(), st.Code())
	}
	return share.Errorf(kind, "%s", st.Message())
}
