package app

// The outbox and the access sync: events are stored with the row that
// produced them and published afterwards; each org's OrgAccess is written
// to the bucket after every change; Sweep retries what failed.

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/crmslack/crmslack/services/teams/internal/registry"
)

// publishPending publishes events in order and reports the ids that made
// it; it stops at the first failure so order is kept.
func (s *Service) publishPending(ctx context.Context, evs []registry.Event) ([]string, error) {
	var done []string
	for _, e := range evs {
		subject, msg, err := toProto(e)
		if err != nil {
			return done, err
		}
		if err := s.pub.Publish(ctx, subject, msg); err != nil {
			return done, fmt.Errorf("publishing %s: %w", e.ID, err)
		}
		done = append(done, e.ID)
	}
	return done, nil
}

// flushTeam publishes a row's pending events and forgets them. A failure
// leaves them pending for Sweep; it is logged and returned.
func (s *Service) flushTeam(ctx context.Context, t registry.Team) error {
	if len(t.Pending) == 0 {
		return nil
	}
	done, perr := s.publishPending(ctx, t.Pending)
	if len(done) > 0 {
		_, _, err := s.mutateTeam(ctx, t.OrgID, t.TeamID, func(cur *registry.Team) (*registry.Team, error) {
			if cur == nil {
				return nil, nil
			}
			n := len(cur.Pending)
			cur.Pending = slices.DeleteFunc(cur.Pending, func(e registry.Event) bool { return slices.Contains(done, e.ID) })
			if len(cur.Pending) == n {
				return nil, nil
			}
			return cur, nil
		})
		if err != nil {
			perr = errors.Join(perr, fmt.Errorf("clearing published events of %s: %w", t.ID(), err))
		}
	}
	if perr != nil {
		s.log.WarnContext(ctx, "team events left pending", "org", t.OrgID, "team", t.TeamID, "err", perr)
	}
	return perr
}

func (s *Service) flushOrg(ctx context.Context, o registry.Org) error {
	if len(o.Pending) == 0 {
		return nil
	}
	done, perr := s.publishPending(ctx, o.Pending)
	if len(done) > 0 {
		_, _, err := s.mutateOrg(ctx, o.ID, func(cur *registry.Org) (*registry.Org, error) {
			if cur == nil {
				return nil, nil
			}
			n := len(cur.Pending)
			cur.Pending = slices.DeleteFunc(cur.Pending, func(e registry.Event) bool { return slices.Contains(done, e.ID) })
			if len(cur.Pending) == n {
				return nil, nil
			}
			return cur, nil
		})
		if err != nil {
			perr = errors.Join(perr, fmt.Errorf("clearing published events of org %s: %w", o.ID, err))
		}
	}
	if perr != nil {
		s.log.WarnContext(ctx, "org events left pending", "org", o.ID, "err", perr)
	}
	return perr
}

// syncAccess writes the org's current access to the bucket. A failure is
// remembered and retried by Sweep.
func (s *Service) syncAccess(ctx context.Context, org string) error {
	err := s.access.Sync(ctx, org, func(ctx context.Context) (registry.Access, error) {
		o, found, err := s.repo.Org(ctx, org)
		if err != nil {
			return registry.Access{}, err
		}
		teams, err := s.repo.TeamsOfOrg(ctx, org)
		if err != nil {
			return registry.Access{}, err
		}
		var op *registry.Org
		if found {
			op = &o
		}
		return registry.AccessOf(org, op, teams, s.now()), nil
	})
	s.retryMu.Lock()
	if err != nil {
		s.retryAccess[org] = true
	} else {
		delete(s.retryAccess, org)
	}
	s.retryMu.Unlock()
	if err != nil {
		s.log.WarnContext(ctx, "org access not synced; will retry", "org", org, "err", err)
	}
	return err
}

// after runs what follows a committed change of a team row: its events,
// then the org's access. Failures are retried by Sweep, so the caller's
// change stands.
func (s *Service) afterTeam(ctx context.Context, t registry.Team) {
	_ = s.flushTeam(ctx, t)
	_ = s.syncAccess(ctx, t.OrgID)
}

// Sweep publishes events left pending by a failed publish and retries
// failed access syncs. all=true syncs every org's access (at start-up).
func (s *Service) Sweep(ctx context.Context, all bool) error {
	var errs []error
	teams, err := s.repo.DirtyTeams(ctx)
	if err != nil {
		return err
	}
	orgs := map[string]bool{}
	for _, t := range teams {
		if err := s.flushTeam(ctx, t); err != nil {
			errs = append(errs, err)
		}
		orgs[t.OrgID] = true
	}
	dirtyOrgs, err := s.repo.DirtyOrgs(ctx)
	if err != nil {
		return err
	}
	for _, o := range dirtyOrgs {
		if err := s.flushOrg(ctx, o); err != nil {
			errs = append(errs, err)
		}
		orgs[o.ID] = true
	}
	s.retryMu.Lock()
	for o := range s.retryAccess {
		orgs[o] = true
	}
	s.retryMu.Unlock()
	if all {
		ids, err := s.repo.OrgIDs(ctx)
		if err != nil {
			return err
		}
		for _, id := range ids {
			orgs[id] = true
		}
	}
	for org := range orgs {
		if err := s.syncAccess(ctx, org); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
