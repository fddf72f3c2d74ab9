package app

// Install, removal and the org's integration switch: the admin's use cases.

import (
	"context"
	"net/url"
	"time"

	"github.com/crmslack/crmslack/libs/installticket"
	"github.com/crmslack/crmslack/services/teams/internal/registry"
)

// BeginInstall returns the gateway URL that starts an "Add to Slack"
// install for org on behalf of caller, an admin.
func (s *Service) BeginInstall(ctx context.Context, org string, caller registry.Caller, teamHint string) (string, error) {
	if err := registry.ValidateOrgID(org); err != nil {
		return "", err
	}
	if err := registry.RequireAdmin(caller, "adding a Slack team"); err != nil {
		return "", err
	}
	if caller.User.ID == "" {
		return "", registry.Invalid("caller.user.id is required")
	}
	if teamHint != "" {
		if err := registry.ValidateTeamID(teamHint); err != nil {
			return "", err
		}
	}
	raw, t, err := s.tickets.Issue(installticket.Ticket{OrgID: org, AdminID: caller.User.ID, AdminName: caller.User.Name, TeamHint: teamHint}, s.cfg.TicketTTL)
	if err != nil {
		return "", err
	}
	q := url.Values{"org": {org}, "admin": {caller.User.ID}, "ticket": {raw}}
	s.log.InfoContext(ctx, "install begun", "org", org, "admin", caller.User.ID, "expires", t.Expires())
	return s.cfg.InstallURL + "?" + q.Encode(), nil
}

// CompleteInstallInput is a verified OAuth exchange, tokens in the clear.
type CompleteInstallInput struct {
	OrgID        string
	By           registry.User
	Team         registry.TeamInfo
	BotToken     string
	RefreshToken string
	ExpiresAt    time.Time
}

// CompleteInstall stores an authorised team for an org, adding it or
// updating its row, and announces it.
func (s *Service) CompleteInstall(ctx context.Context, in CompleteInstallInput) (registry.Team, bool, error) {
	if err := registry.ValidateOrgID(in.OrgID); err != nil {
		return registry.Team{}, false, err
	}
	if err := registry.ValidateTeamID(in.Team.TeamID); err != nil {
		return registry.Team{}, false, err
	}
	if in.BotToken == "" {
		return registry.Team{}, false, registry.Invalid("bot_token is required")
	}
	bot, err := s.seal(in.OrgID, in.Team.TeamID, fieldBot, in.BotToken)
	if err != nil {
		return registry.Team{}, false, err
	}
	refresh, err := s.seal(in.OrgID, in.Team.TeamID, fieldRefresh, in.RefreshToken)
	if err != nil {
		return registry.Team{}, false, err
	}
	inst := registry.Install{OrgID: in.OrgID, By: in.By, Team: in.Team, BotToken: bot, RefreshToken: refresh, TokenExpiresAt: in.ExpiresAt}
	if err := inst.Validate(); err != nil {
		return registry.Team{}, false, err
	}
	defer s.lockOrg(in.OrgID)()
	// The org's switch exists from its first install on (and is on).
	if _, _, err := s.mutateOrg(ctx, in.OrgID, func(cur *registry.Org) (*registry.Org, error) {
		if cur != nil {
			return nil, nil
		}
		o := registry.NewOrg(in.OrgID, s.now())
		return &o, nil
	}); err != nil {
		return registry.Team{}, false, err
	}
	var reinstall bool
	t, _, err := s.mutateTeam(ctx, in.OrgID, in.Team.TeamID, func(cur *registry.Team) (*registry.Team, error) {
		next, re, err := registry.ApplyInstall(cur, inst, s.now())
		if err != nil {
			return nil, err
		}
		reinstall = re
		return &next, nil
	})
	if err != nil {
		return registry.Team{}, false, err
	}
	s.members.forgetTeam(in.Team.TeamID)
	s.dirs.forget(in.Team.TeamID)
	s.log.InfoContext(ctx, "team installed", "org", in.OrgID, "team", in.Team.TeamID, "reinstall", reinstall,
		"by", in.By.ID, "rotating", t.Rotating(), "key_id", t.BotToken.KeyID)
	s.afterTeam(ctx, t)
	return t, reinstall, nil
}

// RemoveTeam takes a team away from an org on an admin's request.
// Removing a removed team succeeds and changes nothing.
func (s *Service) RemoveTeam(ctx context.Context, org, team string, caller registry.Caller) error {
	if err := registry.ValidateOrgID(org); err != nil {
		return err
	}
	if err := registry.ValidateTeamID(team); err != nil {
		return err
	}
	if err := registry.RequireAdmin(caller, "removing a Slack team"); err != nil {
		return err
	}
	unlock := s.lockOrg(org)
	var held registry.Team // the row as it was, with its tokens
	t, found, err := s.mutateTeam(ctx, org, team, func(cur *registry.Team) (*registry.Team, error) {
		if cur == nil {
			return nil, registry.NotFoundTeam(org, team)
		}
		held = *cur
		if !cur.Remove(registry.ReasonAdmin, caller.User, s.now()) {
			return nil, nil
		}
		return cur, nil
	})
	if err != nil {
		unlock()
		return err
	}
	if found {
		s.log.InfoContext(ctx, "team removed", "org", org, "team", team, "by", caller.User.ID, "reason", "admin")
		s.afterTeam(ctx, t)
	}
	unlock()
	if found {
		s.revokeAtSlack(ctx, held)
	}
	return nil
}

// SetIntegration disables or enables an org's integration on an admin's
// request. Repeating the current state succeeds and changes nothing.
func (s *Service) SetIntegration(ctx context.Context, org string, enabled bool, caller registry.Caller) error {
	if err := registry.ValidateOrgID(org); err != nil {
		return err
	}
	action := "disabling the Slack integration"
	if enabled {
		action = "enabling the Slack integration"
	}
	if err := registry.RequireAdmin(caller, action); err != nil {
		return err
	}
	defer s.lockOrg(org)()
	o, changed, err := s.mutateOrg(ctx, org, func(cur *registry.Org) (*registry.Org, error) {
		if cur == nil {
			return nil, registry.NotFoundOrg(org)
		}
		if enabled && !cur.Enable(caller.User, s.now()) || !enabled && !cur.Disable(caller.User, s.now()) {
			return nil, nil
		}
		return cur, nil
	})
	if err != nil {
		return err
	}
	if changed {
		s.log.InfoContext(ctx, "integration switched", "org", org, "enabled", enabled, "by", caller.User.ID)
	}
	_ = s.flushOrg(ctx, o)
	_ = s.syncAccess(ctx, org)
	return nil
}

// Integration is an org's switch as reported.
type Integration struct {
	Enabled     bool
	ActiveTeams int
	ChangedAt   time.Time
}

// GetIntegration reports an org's switch and how many teams it can use.
func (s *Service) GetIntegration(ctx context.Context, org string) (Integration, error) {
	if err := registry.ValidateOrgID(org); err != nil {
		return Integration{}, err
	}
	o, found, err := s.repo.Org(ctx, org)
	if err != nil {
		return Integration{}, err
	}
	if !found {
		return Integration{}, registry.NotFoundOrg(org)
	}
	teams, err := s.repo.TeamsOfOrg(ctx, org)
	if err != nil {
		return Integration{}, err
	}
	n := 0
	for i := range teams {
		if teams[i].Usable() {
			n++
		}
	}
	return Integration{Enabled: o.Enabled, ActiveTeams: n, ChangedAt: o.ChangedAt}, nil
}
