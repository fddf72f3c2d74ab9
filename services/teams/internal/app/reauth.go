package app

import (
	"context"
	"fmt"

	"github.com/crmslack/crmslack/services/teams/internal/registry"
)

// needsReauth is the error of a call about a team whose token Slack no
// longer honours: FailedPrecondition, naming what the admin must do.
func needsReauth(team string) error {
	return &registry.Error{Kind: registry.ErrFailedPrecondition,
		Msg: fmt.Sprintf("team %s needs re-authorization: Slack no longer honours its token; a CRM administrator must reconnect Slack (add the workspace again)", team)}
}

// tokenDied handles a Slack failure of a call made with t's bot token: when
// Slack says the token is dead (invalid_auth, token_revoked,
// account_inactive, not_authed…), the team is marked as needing
// re-authorization, as the egress's ReportTokenFailure would, and the
// error to return is needsReauth. Any other failure returns nil.
func (s *Service) tokenDied(ctx context.Context, t registry.Team, err error) error {
	code := slackCode(err)
	if !deadTokenCodes[code] {
		return nil
	}
	if t.Rotating() {
		// A rotating token may only have expired early: a refresh tells.
		if _, rerr := s.refresh(ctx, t); rerr == nil {
			return unavailable("team %s: its token was refreshed; try again", t.TeamID)
		}
	}
	if merr := s.markBroken(ctx, t, code); merr != nil {
		return merr
	}
	return needsReauth(t.TeamID)
}
