package app

import (
	"context"
	"time"

	"github.com/crmslack/crmslack/services/teams/internal/registry"
)

// revokeTimeout bounds the auth.revoke call of a removal; it runs detached
// from the caller, whose removal is already committed.
const revokeTimeout = 10 * time.Second

// revokeAtSlack revokes the token a removed team held (auth.revoke), so a
// removal ends the app's access at Slack too, not only in the registry. The
// removal stands whatever Slack answers: a token Slack already calls dead
// is done with, and any other failure is logged for an operator, since the
// row no longer keeps the token to try again with.
func (s *Service) revokeAtSlack(ctx context.Context, was registry.Team) {
	if was.BotToken.IsZero() {
		return // removed before, or broken and already forgotten
	}
	token, err := s.open(&was, fieldBot)
	if err != nil {
		s.log.ErrorContext(ctx, "removed team's token not revoked: cannot open it", "org", was.OrgID, "team", was.TeamID, "err", err)
		s.metrics.revoked("unreadable")
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), revokeTimeout)
	defer cancel()
	err = s.slack.Revoke(rctx, token)
	switch code := slackCode(err); {
	case err == nil:
		s.log.InfoContext(ctx, "removed team's token revoked at Slack", "org", was.OrgID, "team", was.TeamID)
		s.metrics.revoked("revoked")
	case deadTokenCodes[code]:
		s.log.InfoContext(ctx, "removed team's token was already dead at Slack", "org", was.OrgID, "team", was.TeamID, "slack_error", code)
		s.metrics.revoked("already_dead")
	default:
		s.log.WarnContext(ctx, "removed team's token not revoked at Slack; revoke it from the Slack app's settings", "org", was.OrgID, "team", was.TeamID, "err", err)
		s.metrics.revoked("failed")
	}
}
