package app

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/crmslack/crmslack/services/teams/internal/registry"
)

// KeyUse is how many stored team rows hold a token sealed under one key.
type KeyUse struct {
	KeyID   string
	Rows    int
	Current bool
}

// keyUse counts rows per key id: every configured key (current first, zero
// when unused), then any key id a row names that is no longer configured
// (its tokens cannot be opened).
func (s *Service) keyUse(rows []registry.Team) []KeyUse {
	counts := map[string]int{}
	for i := range rows {
		ids := []string{rows[i].BotToken.KeyID, rows[i].RefreshToken.KeyID}
		for j, id := range ids {
			if id != "" && !slices.Contains(ids[:j], id) {
				counts[id]++
			}
		}
	}
	var out []KeyUse
	for _, id := range s.keys.KeyIDs() {
		out = append(out, KeyUse{KeyID: id, Rows: counts[id], Current: id == s.keys.CurrentKeyID()})
		delete(counts, id)
	}
	var unknown []string
	for id := range counts {
		unknown = append(unknown, id)
	}
	slices.Sort(unknown)
	for _, id := range unknown {
		out = append(out, KeyUse{KeyID: id, Rows: counts[id]})
	}
	return out
}

// TokenKeyUse reports, for an org's admin, how many of its rows each key
// protects.
func (s *Service) TokenKeyUse(ctx context.Context, org string) ([]KeyUse, error) {
	if err := registry.ValidateOrgID(org); err != nil {
		return nil, err
	}
	rows, err := s.repo.TeamsOfOrg(ctx, org)
	if err != nil {
		return nil, err
	}
	return s.keyUse(rows), nil
}

// Reseal completes a key rotation: every stored token sealed under a key
// other than the current one of TEAMS_TOKEN_KEYS is opened and sealed
// again under the current key, row by row (each a compare-and-set, so a
// concurrent change wins and is looked at again next run). Afterwards the
// per-key counts are published as crmslack_teams_sealed_rows; once an old
// key counts zero it can be dropped from TEAMS_TOKEN_KEYS.
func (s *Service) Reseal(ctx context.Context) (int, error) {
	orgs, err := s.repo.OrgIDs(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	var all []registry.Team
	for _, org := range orgs {
		rows, err := s.repo.TeamsOfOrg(ctx, org)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, row := range rows {
			if !s.stale(&row) {
				all = append(all, row)
				continue
			}
			got, changed, err := s.resealRow(ctx, row)
			if err != nil {
				errs = append(errs, fmt.Errorf("re-sealing %s: %w", row.ID(), err))
				all = append(all, row)
				continue
			}
			if changed {
				n++
			}
			all = append(all, got)
		}
	}
	s.metrics.sealedRows(s.keyUse(all))
	if n > 0 {
		s.log.InfoContext(ctx, "tokens re-sealed under the current key", "rows", n, "key_id", s.keys.CurrentKeyID())
	}
	return n, errors.Join(errs...)
}

func (s *Service) stale(t *registry.Team) bool {
	return s.keys.Stale(t.BotToken) || s.keys.Stale(t.RefreshToken)
}

func (s *Service) resealRow(ctx context.Context, row registry.Team) (registry.Team, bool, error) {
	defer s.lockOrg(row.OrgID)()
	return s.mutateTeam(ctx, row.OrgID, row.TeamID, func(cur *registry.Team) (*registry.Team, error) {
		if cur == nil || !s.stale(cur) {
			return nil, nil
		}
		for _, field := range []string{fieldBot, fieldRefresh} {
			v := &cur.BotToken
			if field == fieldRefresh {
				v = &cur.RefreshToken
			}
			if !s.keys.Stale(*v) {
				continue
			}
			token, err := s.open(cur, field)
			if err != nil {
				return nil, err
			}
			if *v, err = s.seal(cur.OrgID, cur.TeamID, field, token); err != nil {
				return nil, err
			}
		}
		return cur, nil
	})
}
