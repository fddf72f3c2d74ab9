package app

// The token lifecycle: sealing at rest, handing a usable bot token to the
// egress, reporting a token Slack refused, and refreshing rotating tokens
// before they expire.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/crmslack/crmslack/services/teams/internal/registry"
	"github.com/crmslack/crmslack/services/teams/internal/sealing"
)

// Token fields, part of the sealed value's associated data.
const (
	fieldBot     = "bot"
	fieldRefresh = "refresh"
)

func tokenAAD(org, team, field string) []byte {
	return sealing.AAD("crmslack/teams/token/v1", org, team, field)
}

func (s *Service) seal(org, team, field, token string) (sealing.Sealed, error) {
	if token == "" {
		return sealing.Sealed{}, nil
	}
	v, err := s.keys.Seal([]byte(token), tokenAAD(org, team, field))
	if err != nil {
		return sealing.Sealed{}, fmt.Errorf("sealing the %s token of %s/%s: %w", field, org, team, err)
	}
	return v, nil
}

func (s *Service) open(t *registry.Team, field string) (string, error) {
	v := t.BotToken
	if field == fieldRefresh {
		v = t.RefreshToken
	}
	pt, err := s.keys.Open(v, tokenAAD(t.OrgID, t.TeamID, field))
	if err != nil {
		return "", fmt.Errorf("opening the %s token of %s: %w", field, t.ID(), err)
	}
	return string(pt), nil
}

// BotToken is what the egress gets.
type BotToken struct {
	Token     string
	BotUserID string
	ExpiresAt time.Time
}

// GetBotToken returns a usable bot token for an org's team, refreshing a
// rotated token first if it has expired. It refuses a removed or broken
// team and a disabled org.
func (s *Service) GetBotToken(ctx context.Context, org, team string) (BotToken, error) {
	t, err := s.GetTeam(ctx, org, team)
	if err != nil {
		return BotToken{}, err
	}
	o, found, err := s.repo.Org(ctx, org)
	if err != nil {
		return BotToken{}, err
	}
	var op *registry.Org
	if found {
		op = &o
	}
	if err := registry.Unusable(op, &t); err != nil {
		return BotToken{}, err
	}
	if s.expired(&t) {
		if t, err = s.refresh(ctx, t); err != nil {
			return BotToken{}, err
		}
	}
	token, err := s.open(&t, fieldBot)
	if err != nil {
		return BotToken{}, err
	}
	return BotToken{Token: token, BotUserID: t.BotUserID, ExpiresAt: t.TokenExpiresAt}, nil
}

// expired reports whether a team's token has expired or is about to: within
// ExpirySkew, or a tenth of its lifetime if that is shorter.
func (s *Service) expired(t *registry.Team) bool {
	skew := s.cfg.ExpirySkew
	if life := t.TokenExpiresAt.Sub(t.TokenIssuedAt); life > 0 {
		skew = min(skew, life/10)
	}
	return t.TokenExpired(s.now(), skew)
}

// usableToken opens an active team's bot token, refreshing it if expired.
func (s *Service) usableToken(ctx context.Context, t registry.Team) (string, error) {
	if s.expired(&t) {
		var err error
		if t, err = s.refresh(ctx, t); err != nil {
			return "", err
		}
	}
	return s.open(&t, fieldBot)
}

// TokenFailure is the outcome of ReportTokenFailure.
type TokenFailure struct {
	Refreshed bool
	Status    registry.Status
}

// ReportTokenFailure handles the egress's report that a team's token got
// slackError. The current token is checked with auth.test first: if it
// works (the reporter held an older one), the answer is "use the current
// token". If Slack says it is dead, a rotating token is refreshed; one that
// cannot be refreshed marks the team broken, which takes it out of the
// org's access until an admin re-authorises it.
func (s *Service) ReportTokenFailure(ctx context.Context, org, team, slackError string) (TokenFailure, error) {
	t, err := s.GetTeam(ctx, org, team)
	if err != nil {
		return TokenFailure{}, err
	}
	if !t.Usable() {
		return TokenFailure{Status: t.Status}, nil
	}
	s.log.InfoContext(ctx, "token failure reported", "org", org, "team", team, "slack_error", slackError)
	token, err := s.open(&t, fieldBot)
	if err != nil {
		return TokenFailure{}, err
	}
	err = s.slack.AuthTest(ctx, token)
	code := slackCode(err)
	switch {
	case err == nil:
		return TokenFailure{Refreshed: true, Status: registry.StatusActive}, nil
	case !deadTokenCodes[code]:
		return TokenFailure{}, unavailable("checking the token of team %s: %v", team, err)
	case t.Rotating():
		nt, err := s.refresh(ctx, t)
		if errors.Is(err, registry.ErrFailedPrecondition) {
			return TokenFailure{Status: registry.StatusBroken}, nil
		}
		if err != nil {
			return TokenFailure{}, err
		}
		return TokenFailure{Refreshed: true, Status: nt.Status}, nil
	}
	if err := s.markBroken(ctx, t, code); err != nil {
		return TokenFailure{}, err
	}
	return TokenFailure{Status: registry.StatusBroken}, nil
}

func (s *Service) markBroken(ctx context.Context, t registry.Team, why string) error {
	defer s.lockOrg(t.OrgID)()
	nt, changed, err := s.mutateTeam(ctx, t.OrgID, t.TeamID, func(cur *registry.Team) (*registry.Team, error) {
		if cur == nil || cur.Generation != t.Generation || cur.TokenSerial != t.TokenSerial || !cur.MarkBroken(s.now()) {
			return nil, nil
		}
		return cur, nil
	})
	if err != nil {
		return err
	}
	if changed {
		s.log.WarnContext(ctx, "team marked broken: its token no longer works", "org", t.OrgID, "team", t.TeamID, "slack_error", why)
		s.metrics.markedForReauth(why)
	}
	s.afterTeam(ctx, nt)
	return nil
}

// refreshLease is how long a replica's refresh lease lasts: longer than a
// refresh may take (refreshTimeout), so it lapses only if its holder died.
const refreshLease = refreshTimeout + 10*time.Second

// refreshTimeout bounds one refresh. It runs detached from the caller's
// context: abandoning an oauth.v2.access call half-way could burn the
// single-use refresh token without storing its successor.
const refreshTimeout = 20 * time.Second

// refresh trades a rotating team's refresh token for a new pair, once at a
// time per row in this replica. If the row changed meanwhile (another
// replica refreshed it), the stored row is returned.
func (s *Service) refresh(ctx context.Context, t registry.Team) (registry.Team, error) {
	ch := s.refreshes.DoChan(t.ID(), func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
		defer cancel()
		return s.doRefresh(rctx, t)
	})
	select {
	case <-ctx.Done():
		return registry.Team{}, ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return registry.Team{}, r.Err
		}
		return r.Val.(registry.Team), nil
	}
}

// refreshPoll is how often a replica waiting for another's refresh looks
// at the row again.
const refreshPoll = 100 * time.Millisecond

// doRefresh refreshes the token of seen's row unless it changed meanwhile.
// Across replicas one at a time trades the token: the row's refresh lease
// says who; the others wait for its result (or for its lease to lapse,
// should it die).
func (s *Service) doRefresh(ctx context.Context, seen registry.Team) (registry.Team, error) {
	for {
		cur, done, err := s.stillDue(ctx, seen)
		if done || err != nil {
			return cur, err
		}
		held, err := s.claimRefresh(ctx, cur)
		if err != nil {
			return registry.Team{}, err
		}
		if held {
			return s.refreshClaimed(ctx, seen, cur)
		}
		select {
		case <-ctx.Done():
			return registry.Team{}, unavailable("refreshing the token of team %s: another replica is refreshing it", cur.TeamID)
		case <-time.After(refreshPoll):
		}
	}
}

// stillDue reads seen's row again: done when its token was refreshed
// meanwhile (cur is the row then), an error when it cannot be refreshed.
func (s *Service) stillDue(ctx context.Context, seen registry.Team) (cur registry.Team, done bool, err error) {
	cur, found, err := s.repo.Team(ctx, seen.OrgID, seen.TeamID)
	if err != nil {
		return registry.Team{}, false, err
	}
	if !found {
		return registry.Team{}, false, registry.NotFoundTeam(seen.OrgID, seen.TeamID)
	}
	if err := registry.Unusable(nil, &cur); err != nil {
		return registry.Team{}, false, err
	}
	if cur.TokenSerial != seen.TokenSerial && !s.expired(&cur) {
		return cur, true, nil
	}
	if !cur.Rotating() {
		return registry.Team{}, false, &registry.Error{Kind: registry.ErrFailedPrecondition,
			Msg: fmt.Sprintf("the token of team %s expired and cannot be refreshed: an admin must re-authorise it", cur.TeamID)}
	}
	return cur, false, nil
}

// claimRefresh takes cur's refresh lease for this replica, for as long as
// a refresh may take.
func (s *Service) claimRefresh(ctx context.Context, cur registry.Team) (bool, error) {
	now := s.now()
	return s.repo.ClaimRefresh(ctx, cur.ID(), s.replica, now, now.Add(refreshLease))
}

// releaseRefresh drops this replica's lease, so another may refresh at once.
func (s *Service) releaseRefresh(ctx context.Context, t registry.Team) {
	if err := s.repo.ReleaseRefresh(ctx, t.ID(), s.replica); err != nil {
		s.log.WarnContext(ctx, "refresh lease not released: it lapses by itself", "org", t.OrgID, "team", t.TeamID, "err", err)
	}
}

// refreshClaimed trades the refresh token of seen's row, whose lease this
// replica holds, and stores the new pair.
func (s *Service) refreshClaimed(ctx context.Context, seen, cur registry.Team) (registry.Team, error) {
	defer s.releaseRefresh(ctx, cur)
	// Read again under the lease: a refresh that ended between the read
	// and the claim must not be repeated with its spent token.
	cur, done, err := s.stillDue(ctx, seen)
	if done || err != nil {
		return cur, err
	}
	rt, err := s.open(&cur, fieldRefresh)
	if err != nil {
		return registry.Team{}, err
	}
	toks, err := s.slack.Refresh(ctx, rt)
	if err != nil {
		code := slackCode(err)
		if !deadTokenCodes[code] {
			return registry.Team{}, unavailable("refreshing the token of team %s: %v", cur.TeamID, err)
		}
		// Dead refresh token, unless another replica refreshed first.
		again, found, lerr := s.repo.Team(ctx, cur.OrgID, cur.TeamID)
		if lerr == nil && found && again.Usable() && again.TokenSerial != cur.TokenSerial {
			return again, nil
		}
		if err := s.markBroken(ctx, cur, code); err != nil {
			return registry.Team{}, err
		}
		return registry.Team{}, &registry.Error{Kind: registry.ErrFailedPrecondition,
			Msg: fmt.Sprintf("team %s of org %s must be re-authorised: Slack refused its refresh token (%s)", cur.TeamID, cur.OrgID, code)}
	}
	if toks.AccessToken == "" || toks.RefreshToken == "" {
		return registry.Team{}, unavailable("refreshing the token of team %s: Slack's answer has no token", cur.TeamID)
	}
	bot, err := s.seal(cur.OrgID, cur.TeamID, fieldBot, toks.AccessToken)
	if err != nil {
		return registry.Team{}, err
	}
	refresh, err := s.seal(cur.OrgID, cur.TeamID, fieldRefresh, toks.RefreshToken)
	if err != nil {
		return registry.Team{}, err
	}
	now := s.now()
	gen, serial := cur.Generation, cur.TokenSerial
	row, _, err := s.mutateTeam(ctx, cur.OrgID, cur.TeamID, func(row *registry.Team) (*registry.Team, error) {
		if row == nil {
			return nil, registry.NotFoundTeam(cur.OrgID, cur.TeamID)
		}
		if err := row.ApplyRefresh(gen, serial, bot, refresh, toks.ExpiresAt, now); err != nil {
			return nil, err
		}
		return row, nil
	})
	if err != nil {
		// The new pair is lost with the row's change (a removal or a
		// reinstall, which brings its own tokens).
		s.log.WarnContext(ctx, "refreshed token not stored: the team changed meanwhile", "org", cur.OrgID, "team", cur.TeamID, "err", err)
		return registry.Team{}, err
	}
	s.log.InfoContext(ctx, "token refreshed", "org", cur.OrgID, "team", cur.TeamID, "expires", toks.ExpiresAt)
	return row, nil
}

// RefreshDue refreshes every rotating token that is due, and reports how
// many were refreshed. The background loop calls it.
func (s *Service) RefreshDue(ctx context.Context) (int, error) {
	teams, err := s.repo.RotatingTeams(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, t := range teams {
		if !t.RefreshDue(s.now()) {
			continue
		}
		if _, err := s.refresh(ctx, t); err != nil {
			errs = append(errs, fmt.Errorf("team %s: %w", t.ID(), err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
