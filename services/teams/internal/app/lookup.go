package app

// Reads: an org's teams (optionally those an email belongs to), one team,
// the orgs of a Slack team, and a Slack user's profile.

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/crmslack/crmslack/services/teams/internal/registry"
)

// ListTeams lists an org's teams: active and broken ones, plus removed
// ones with includeRemoved. With memberEmail, only active teams where that
// email is a member (checked with the team's bot token, cached).
func (s *Service) ListTeams(ctx context.Context, org, memberEmail string, includeRemoved bool) ([]registry.Team, bool, error) {
	if err := registry.ValidateOrgID(org); err != nil {
		return nil, false, err
	}
	memberEmail = strings.TrimSpace(memberEmail)
	if memberEmail != "" && (!strings.Contains(memberEmail, "@") || len(memberEmail) > 254) {
		return nil, false, registry.Invalid("member_email %q is not an email address", memberEmail)
	}
	o, found, err := s.repo.Org(ctx, org)
	if err != nil {
		return nil, false, err
	}
	if !found {
		return nil, false, registry.NotFoundOrg(org)
	}
	teams, err := s.repo.TeamsOfOrg(ctx, org)
	if err != nil {
		return nil, false, err
	}
	var out []registry.Team
	for _, t := range teams {
		switch {
		case memberEmail != "":
			if !t.Usable() {
				continue
			}
			ok, err := s.isMember(ctx, &t, memberEmail)
			if err != nil {
				return nil, false, err
			}
			if !ok {
				continue
			}
		case t.Status == registry.StatusRemoved && !includeRemoved:
			continue
		}
		out = append(out, t)
	}
	return out, o.Enabled, nil
}

func (s *Service) isMember(ctx context.Context, t *registry.Team, email string) (bool, error) {
	if v, ok := s.members.get(t.TeamID, email, s.now()); ok {
		return v, nil
	}
	token, err := s.usableToken(ctx, *t)
	if err != nil {
		return false, err
	}
	member, err := s.slack.IsMember(ctx, token, email)
	if err != nil {
		return false, unavailable("checking membership in team %s: %v", t.TeamID, err)
	}
	ttl := s.cfg.MembershipTTL
	if !member {
		ttl /= 5
	}
	s.members.put(t.TeamID, email, member, s.now().Add(ttl))
	return member, nil
}

// GetTeam returns one of an org's teams, whatever its status.
func (s *Service) GetTeam(ctx context.Context, org, team string) (registry.Team, error) {
	if err := registry.ValidateOrgID(org); err != nil {
		return registry.Team{}, err
	}
	if err := registry.ValidateTeamID(team); err != nil {
		return registry.Team{}, err
	}
	t, found, err := s.repo.Team(ctx, org, team)
	if err != nil {
		return registry.Team{}, err
	}
	if !found {
		return registry.Team{}, registry.NotFoundTeam(org, team)
	}
	return t, nil
}

// ResolveTeam lists the orgs that can use a Slack team, and whether any
// of them has the integration on.
func (s *Service) ResolveTeam(ctx context.Context, team string) ([]string, bool, error) {
	if err := registry.ValidateTeamID(team); err != nil {
		return nil, false, err
	}
	rows, err := s.repo.RowsOfTeam(ctx, team)
	if err != nil {
		return nil, false, err
	}
	var orgs []string
	enabled := false
	for _, r := range rows {
		if !r.Usable() {
			continue
		}
		orgs = append(orgs, r.OrgID)
		o, found, err := s.repo.Org(ctx, r.OrgID)
		if err != nil {
			return nil, false, err
		}
		if !found || o.Enabled {
			enabled = true
		}
	}
	return orgs, enabled, nil
}

var slackUserIDRe = regexp.MustCompile(`^[UW][A-Z0-9]{2,31}$`)

// GetSlackUser returns a Slack user's profile as one of the team's bot
// tokens sees it (users.info), cached for MembershipTTL. The team must be
// active in some org.
func (s *Service) GetSlackUser(ctx context.Context, team, user string) (SlackUser, error) {
	if err := registry.ValidateTeamID(team); err != nil {
		return SlackUser{}, err
	}
	if !slackUserIDRe.MatchString(user) {
		return SlackUser{}, registry.Invalid("user_id %q is not a Slack user id", user)
	}
	if u, ok := s.users.get(team, user, s.now()); ok {
		return u, nil
	}
	rows, err := s.repo.RowsOfTeam(ctx, team)
	if err != nil {
		return SlackUser{}, err
	}
	i := slices.IndexFunc(rows, func(t registry.Team) bool { return t.Usable() })
	if i < 0 {
		if slices.ContainsFunc(rows, func(t registry.Team) bool { return t.Status == registry.StatusBroken }) {
			return SlackUser{}, needsReauth(team)
		}
		return SlackUser{}, &registry.Error{Kind: registry.ErrNotFound, Msg: fmt.Sprintf("team %s is not connected to any org", team)}
	}
	token, err := s.usableToken(ctx, rows[i])
	if err != nil {
		return SlackUser{}, err
	}
	u, found, err := s.slack.UserInfo(ctx, token, user)
	if err != nil {
		if dead := s.tokenDied(ctx, rows[i], err); dead != nil {
			return SlackUser{}, dead
		}
		return SlackUser{}, unavailable("looking up user %s in team %s: %v", user, team, err)
	}
	if !found {
		return SlackUser{}, &registry.Error{Kind: registry.ErrNotFound, Msg: fmt.Sprintf("user %s is not in team %s", user, team)}
	}
	s.users.put(team, user, u, s.now().Add(s.cfg.MembershipTTL))
	return u, nil
}
