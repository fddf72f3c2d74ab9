package app

// Slack events that concern the registry: the app uninstalled, its tokens
// revoked.

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/crmslack/crmslack/services/teams/internal/registry"
)

// Slack events the registry acts on.
const (
	EventAppUninstalled = "app_uninstalled"
	EventTokensRevoked  = "tokens_revoked"
)

// SlackEvent is an Events API callback that concerns the registry.
type SlackEvent struct {
	EventID         string
	TeamID          string
	Type            string
	RevokedBotUsers []string
	EventTime       time.Time
}

// HandleSlackEvent removes a team from every org that has it when Slack
// reports app_uninstalled, or tokens_revoked for its bot. Either order and
// any repetition remove each row once and announce it once; an event older
// than the row's install (a late redelivery) is ignored.
func (s *Service) HandleSlackEvent(ctx context.Context, ev SlackEvent) error {
	var reason registry.RemovalReason
	switch ev.Type {
	case EventAppUninstalled:
		reason = registry.ReasonAppUninstalled
	case EventTokensRevoked:
		if len(ev.RevokedBotUsers) == 0 {
			return nil // only user tokens, which the registry does not hold
		}
		reason = registry.ReasonTokensRevoked
	default:
		return nil
	}
	if err := registry.ValidateTeamID(ev.TeamID); err != nil {
		return err
	}
	rows, err := s.repo.RowsOfTeam(ctx, ev.TeamID)
	if err != nil {
		return err
	}
	var errs []error
	for _, row := range rows {
		if reason == registry.ReasonTokensRevoked && !slices.Contains(ev.RevokedBotUsers, row.BotUserID) {
			continue
		}
		if err := s.removeBySlack(ctx, row, reason, ev); err != nil {
			errs = append(errs, err)
		}
	}
	s.members.forgetTeam(ev.TeamID)
	s.dirs.forget(ev.TeamID)
	return errors.Join(errs...)
}

func (s *Service) removeBySlack(ctx context.Context, row registry.Team, reason registry.RemovalReason, ev SlackEvent) error {
	defer s.lockOrg(row.OrgID)()
	removed := false
	t, found, err := s.mutateTeam(ctx, row.OrgID, row.TeamID, func(cur *registry.Team) (*registry.Team, error) {
		removed = false
		if cur == nil || cur.StaleSlackEvent(ev.EventTime) || !cur.Remove(reason, registry.User{}, s.now()) {
			return nil, nil
		}
		removed = true
		return cur, nil
	})
	if err != nil {
		return err
	}
	if !found {
		return nil
	}
	if removed {
		s.log.InfoContext(ctx, "team removed by Slack", "org", t.OrgID, "team", t.TeamID, "slack_event", ev.Type, "slack_event_id", ev.EventID)
	}
	// Pending events are published even when this delivery changed
	// nothing: the first one may have stored the removal and died before
	// publishing it.
	if err := s.flushTeam(ctx, t); err != nil {
		return err
	}
	return s.syncAccess(ctx, t.OrgID)
}
