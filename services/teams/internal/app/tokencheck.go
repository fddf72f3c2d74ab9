package app

import (
	"context"
	"errors"
	"time"

	"github.com/crmslack/crmslack/services/teams/internal/registry"
)

// CheckTokens asks Slack (auth.test) whether each active team's token
// still works, at most once per Config.TokenCheckInterval: a revocation
// whose tokens_revoked event was lost, for a team that posts nothing and
// whose users are cached, is found within that interval. A dead token
// marks the team as needing re-authorization; any other failure is left
// for the next run. It returns how many teams it marked.
func (s *Service) CheckTokens(ctx context.Context) (int, error) {
	s.checkMu.Lock()
	if now := s.now(); now.Sub(s.lastCheck) < s.cfg.TokenCheckInterval {
		s.checkMu.Unlock()
		return 0, nil
	} else {
		s.lastCheck = now
	}
	s.checkMu.Unlock()
	orgs, err := s.repo.OrgIDs(ctx)
	if err != nil {
		return 0, err
	}
	marked := 0
	var errs []error
	for _, org := range orgs {
		rows, err := s.repo.TeamsOfOrg(ctx, org)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, t := range rows {
			if !t.Usable() || s.expired(&t) {
				continue // expired rotating tokens are the refresher's
			}
			if dead, err := s.checkToken(ctx, t); err != nil {
				errs = append(errs, err)
			} else if dead {
				marked++
			}
		}
	}
	return marked, errors.Join(errs...)
}

func (s *Service) checkToken(ctx context.Context, t registry.Team) (bool, error) {
	token, err := s.open(&t, fieldBot)
	if err != nil {
		return false, err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err = s.slack.AuthTest(cctx, token)
	if err == nil || !deadTokenCodes[slackCode(err)] {
		return false, nil // fine, or Slack unreachable: tried again next run
	}
	if err := s.tokenDied(ctx, t, err); err != nil && !errors.Is(err, registry.ErrFailedPrecondition) {
		return false, err
	}
	return true, nil
}
