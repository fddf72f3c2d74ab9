package app

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/topology"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	remindersv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/reminders/v1"

	"github.com/crmslack/crmslack/services/reminders/internal/remind"
)

// casAttempts bounds compare-and-set retries when replicas handle events
// of one activity at once.
const casAttempts = 8

// HandleActivityScheduled sets the timers of a new activity.
func (s *Service) HandleActivityScheduled(ctx context.Context, ev *crmv1.ActivityScheduled) error {
	return s.upsert(ctx, ev.GetEnvelope().GetOrgId(), ev.GetActivity())
}

// HandleActivityUpdated moves, adds or removes timers of a changed activity.
func (s *Service) HandleActivityUpdated(ctx context.Context, ev *crmv1.ActivityUpdated) error {
	return s.upsert(ctx, ev.GetEnvelope().GetOrgId(), ev.GetActivity())
}

// HandleActivityCancelled removes every timer of the activity.
func (s *Service) HandleActivityCancelled(ctx context.Context, ev *crmv1.ActivityCancelled) error {
	return s.end(ctx, ev.GetEnvelope().GetOrgId(), ev.GetActivityId(), ev.GetKind(), ev.GetVersion(),
		remindersv1.ActivityLifecycle_ACTIVITY_LIFECYCLE_CANCELLED)
}

// HandleActivityCompleted removes every timer of the activity.
func (s *Service) HandleActivityCompleted(ctx context.Context, ev *crmv1.ActivityCompleted) error {
	return s.end(ctx, ev.GetEnvelope().GetOrgId(), ev.GetActivityId(), ev.GetKind(), ev.GetVersion(),
		remindersv1.ActivityLifecycle_ACTIVITY_LIFECYCLE_COMPLETED)
}

func validActivity(org string, a *crmv1.Activity) error {
	if _, err := topology.Token(org); err != nil {
		return fmt.Errorf("org: %w", err)
	}
	if a == nil {
		return errors.New("no activity")
	}
	if _, err := topology.Token(a.GetId()); err != nil {
		return fmt.Errorf("activity id: %w", err)
	}
	if a.GetVersion() <= 0 {
		return fmt.Errorf("activity %s: version must be positive", a.GetId())
	}
	if a.GetStartAt() == nil {
		return fmt.Errorf("activity %s: no start or due time", a.GetId())
	}
	for _, p := range remind.People(a) {
		if _, err := topology.Token(p.GetId()); err != nil {
			return fmt.Errorf("activity %s: user id: %w", a.GetId(), err)
		}
	}
	return nil
}

// upsert stores a newer snapshot and applies its plan. An older or equal
// version changes nothing stored; an equal one (a redelivery) sets its
// future timers again, in case the first handling stopped half-way.
func (s *Service) upsert(ctx context.Context, org string, a *crmv1.Activity) error {
	if err := validActivity(org, a); err != nil {
		return bus.Permanent(err)
	}
	for range casAttempts {
		prev, rev, err := s.activities.Get(ctx, org, a.GetId())
		if err != nil {
			return err
		}
		switch {
		case prev.GetVersion() > a.GetVersion():
			return nil
		case prev.GetVersion() == a.GetVersion():
			if prev.GetLifecycle() != remindersv1.ActivityLifecycle_ACTIVITY_LIFECYCLE_ACTIVE {
				return nil
			}
			if err := s.index(ctx, org, a); err != nil {
				return err
			}
			return s.apply(ctx, org, a.GetId(), remind.PlanChange(prev, a, s.enabled(org), s.now()))
		}
		next := &remindersv1.ActivityState{
			OrgId: org, Activity: proto.CloneOf(a), Version: a.GetVersion(),
			Lifecycle: remindersv1.ActivityLifecycle_ACTIVITY_LIFECYCLE_ACTIVE,
		}
		if prev.GetLifecycle() == remindersv1.ActivityLifecycle_ACTIVITY_LIFECYCLE_CANCELLED ||
			prev.GetLifecycle() == remindersv1.ActivityLifecycle_ACTIVITY_LIFECYCLE_COMPLETED {
			// A newer snapshot of an ended activity reopens it (a task
			// reopened in the CRM).
			prev = nil
		}
		if err := s.activities.Put(ctx, next, rev); errors.Is(err, ErrConflict) {
			continue
		} else if err != nil {
			return err
		}
		if err := s.index(ctx, org, a); err != nil {
			return err
		}
		return s.apply(ctx, org, a.GetId(), remind.PlanChange(prev, a, s.enabled(org), s.now()))
	}
	return fmt.Errorf("activity %s: still changing after %d attempts", a.GetId(), casAttempts)
}

// index lists the activity under each of its people, for turning
// reminders on later.
func (s *Service) index(ctx context.Context, org string, a *crmv1.Activity) error {
	for _, p := range remind.People(a) {
		if err := s.people.Add(ctx, org, p.GetId(), a.GetId()); err != nil {
			return err
		}
	}
	return nil
}

// backfill sets a user's timers of the activities they take part in, once
// they turned reminders on: those the CRM sent while reminders were off.
func (s *Service) backfill(ctx context.Context, org, user string) error {
	ids, err := s.people.Of(ctx, org, user)
	if err != nil {
		return err
	}
	only := func(u string) bool { return u == user }
	for _, id := range ids {
		st, _, err := s.activities.Get(ctx, org, id)
		if err != nil {
			return err
		}
		if st.GetLifecycle() != remindersv1.ActivityLifecycle_ACTIVITY_LIFECYCLE_ACTIVE {
			continue
		}
		// As an unchanged activity: future reminders only.
		p := remind.PlanChange(st, st.GetActivity(), only, s.now())
		p.Remove = nil
		if err := s.apply(ctx, org, id, p); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) enabled(org string) remind.Enabled {
	return func(user string) bool { return s.prefs.Enabled(org, user) }
}

func (s *Service) apply(ctx context.Context, org, activity string, p remind.Plan) error {
	for _, sl := range p.Remove {
		if err := s.timers.Remove(ctx, org, activity, sl); err != nil {
			return err
		}
	}
	for _, t := range p.Set {
		if err := s.timers.Set(ctx, org, activity, t, remind.Due(org, activity, t, t.Offset, t.At, s.now())); err != nil {
			return err
		}
	}
	return nil
}

// end marks the activity cancelled or completed (so no older update
// revives it) and removes its timers.
func (s *Service) end(ctx context.Context, org, id string, kind crmv1.ActivityKind, version int64, lc remindersv1.ActivityLifecycle) error {
	if _, err := topology.Token(org); err != nil {
		return bus.Permanent(fmt.Errorf("org: %w", err))
	}
	if _, err := topology.Token(id); err != nil {
		return bus.Permanent(fmt.Errorf("activity id: %w", err))
	}
	for range casAttempts {
		prev, rev, err := s.activities.Get(ctx, org, id)
		if err != nil {
			return err
		}
		switch {
		case prev.GetVersion() > version:
			return nil // a newer snapshot decides
		case prev.GetVersion() == version && prev.GetLifecycle() == lc:
			// A redelivery: the first handling may have stopped before it
			// removed the timers.
			return s.timers.RemoveActivity(ctx, org, id)
		}
		a := proto.CloneOf(prev.GetActivity())
		if a == nil {
			a = &crmv1.Activity{Id: id, Kind: kind}
		}
		a.Version = version
		err = s.activities.Put(ctx, &remindersv1.ActivityState{OrgId: org, Activity: a, Version: version, Lifecycle: lc}, rev)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return err
		}
		return s.timers.RemoveActivity(ctx, org, id)
	}
	return fmt.Errorf("activity %s: still changing after %d attempts", id, casAttempts)
}
