package app

import (
	"context"
	"errors"
	"slices"

	"github.com/crmslack/crmslack/libs/fault"
	"github.com/crmslack/crmslack/libs/topology"

	"github.com/crmslack/crmslack/services/signals/internal/matrix"
)

// Caller is the CRM user making a settings call.
type Caller struct {
	User    matrix.Person
	IsAdmin bool
}

// maxSaveAttempts bounds the read-modify-write loop of a settings change
// racing other changes of the same org.
const maxSaveAttempts = 5

// Settings returns the org's settings as this replica uses them.
func (s *Service) Settings(org string) (matrix.Settings, error) {
	if err := checkOrg(org); err != nil {
		return matrix.Settings{}, err
	}
	st := s.view.Get(org)
	st.Org = org
	return st, nil
}

// UpdateCells sets the cells given; the others keep their value.
func (s *Service) UpdateCells(ctx context.Context, org string, c Caller, cells map[matrix.Key]bool, expected uint64) (matrix.Settings, error) {
	if len(cells) == 0 {
		return matrix.Settings{}, invalid("no cells to update")
	}
	return s.change(ctx, org, c, expected, func(st *matrix.Settings) error {
		m, err := st.Matrix.With(cells)
		if err != nil {
			return invalid("%v", err)
		}
		st.Matrix = m
		return nil
	})
}

// ReplaceMatrix sets the whole matrix: the cells given as on are on, all
// others off.
func (s *Service) ReplaceMatrix(ctx context.Context, org string, c Caller, cells map[matrix.Key]bool, expected uint64) (matrix.Settings, error) {
	return s.change(ctx, org, c, expected, func(st *matrix.Settings) error {
		m, err := matrix.Exactly(cells)
		if err != nil {
			return invalid("%v", err)
		}
		st.Matrix = m
		return nil
	})
}

// Reset puts the matrix back to the defaults; team choices stay.
func (s *Service) Reset(ctx context.Context, org string, c Caller) (matrix.Settings, error) {
	return s.change(ctx, org, c, 0, func(st *matrix.Settings) error {
		st.Matrix = matrix.Matrix{}
		return nil
	})
}

// SetDefaultTeam names the org's default team ("" clears it).
func (s *Service) SetDefaultTeam(ctx context.Context, org string, c Caller, team string) (matrix.Settings, error) {
	if err := s.checkTeam(org, team); err != nil {
		return matrix.Settings{}, err
	}
	return s.change(ctx, org, c, 0, func(st *matrix.Settings) error {
		st.DefaultTeam = team
		return nil
	})
}

// SetOwnerTeam records an owner's team ("" clears it). The owner may set
// their own; an admin anyone's.
func (s *Service) SetOwnerTeam(ctx context.Context, org string, c Caller, owner, team string) (matrix.Settings, error) {
	if owner == "" {
		return matrix.Settings{}, invalid("owner_id is required")
	}
	if c.User.ID == "" {
		return matrix.Settings{}, fault.Errorf(ErrDenied, "the caller's CRM user id is required")
	}
	if !c.IsAdmin && c.User.ID != owner {
		return matrix.Settings{}, fault.Errorf(ErrDenied, "only %s or an admin may choose %s's team", owner, owner)
	}
	if err := s.checkTeam(org, team); err != nil {
		return matrix.Settings{}, err
	}
	return s.apply(ctx, org, c, 0, func(st *matrix.Settings) error {
		if team == "" {
			delete(st.OwnerTeams, owner)
			return nil
		}
		if st.OwnerTeams == nil {
			st.OwnerTeams = map[string]string{}
		}
		st.OwnerTeams[owner] = team
		return nil
	})
}

func (s *Service) checkTeam(org, team string) error {
	if team == "" {
		return nil
	}
	_, teams, known := s.access.Org(org)
	if !known || !slices.Contains(teams, team) {
		return fault.Errorf(ErrPrecondition, "team %s is not an active Slack team of org %s", team, org)
	}
	return nil
}

// change is apply for admins only.
func (s *Service) change(ctx context.Context, org string, c Caller, expected uint64, edit func(*matrix.Settings) error) (matrix.Settings, error) {
	if !c.IsAdmin {
		return matrix.Settings{}, fault.Errorf(ErrDenied, "only CRM administrators change the SalesSignals settings")
	}
	if c.User.ID == "" {
		return matrix.Settings{}, fault.Errorf(ErrDenied, "the caller's CRM user id is required")
	}
	return s.apply(ctx, org, c, expected, edit)
}

// apply reads the stored settings, edits them and stores them at the
// revision read, retrying when another change won the race.
func (s *Service) apply(ctx context.Context, org string, c Caller, expected uint64, edit func(*matrix.Settings) error) (matrix.Settings, error) {
	if err := checkOrg(org); err != nil {
		return matrix.Settings{}, err
	}
	for range maxSaveAttempts {
		cur, rev, err := s.settings.Load(ctx, org)
		if err != nil {
			s.log.ErrorContext(ctx, "reading signals settings", "org", org, "err", err)
			return matrix.Settings{}, fault.Errorf(ErrUnavailable, "the settings store is unavailable; try again")
		}
		if expected != 0 && expected != rev {
			return matrix.Settings{}, fault.Errorf(ErrStale, "version %d was expected, the settings are at %d", expected, rev)
		}
		next := cur.Clone()
		next.Org = org
		if err := edit(&next); err != nil {
			return matrix.Settings{}, err
		}
		next.UpdatedAt = s.now().UTC()
		next.UpdatedBy = c.User
		nrev, err := s.settings.Save(ctx, next, rev)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			s.log.ErrorContext(ctx, "storing signals settings", "org", org, "err", err)
			return matrix.Settings{}, fault.Errorf(ErrUnavailable, "the settings store is unavailable; try again")
		}
		next.Version = nrev
		s.view.Set(next)
		s.log.InfoContext(ctx, "salessignals settings changed", "org", org, "by", c.User.ID, "version", nrev)
		return next, nil
	}
	return matrix.Settings{}, fault.Errorf(ErrStale, "the settings kept changing; try again")
}

func checkOrg(org string) error {
	if _, err := topology.Token(org); err != nil {
		return invalid("org_id: %v", err)
	}
	return nil
}
