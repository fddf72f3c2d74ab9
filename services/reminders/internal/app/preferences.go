package app

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/fault"
	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	remindersv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/reminders/v1"
)

// Refusals of the preferences API, libs/fault kinds (libs/rpc maps each to
// its gRPC code).
var (
	ErrInvalid      = fault.Invalid
	ErrPrecondition = fault.Precondition
)

// GetPreferences answers a user's preferences; off for a user who never
// chose.
func (s *Service) GetPreferences(_ context.Context, org, user string) (*remindersv1.Preferences, error) {
	if err := checkIDs(org, user); err != nil {
		return nil, err
	}
	if p, ok := s.prefs.Get(org, user); ok {
		return proto.CloneOf(p), nil
	}
	return &remindersv1.Preferences{OrgId: org, User: &commonv1.CrmUserRef{Id: user}}, nil
}

// SetPreferences records a user's choice. On, it needs a team that is
// active for the org (and an email to reach the user by); off, it removes
// the user's pending reminders.
func (s *Service) SetPreferences(ctx context.Context, req *remindersv1.SetPreferencesRequest) (*remindersv1.Preferences, error) {
	org, user := req.GetOrgId(), req.GetUser()
	if err := checkIDs(org, user.GetId()); err != nil {
		return nil, err
	}
	if tz := req.GetTimeZone(); tz != "" {
		if _, err := time.LoadLocation(tz); err != nil {
			return nil, fault.Errorf(ErrInvalid, "time_zone %q is not an IANA time zone", tz)
		}
	}
	p := &remindersv1.Preferences{
		OrgId: org, User: proto.CloneOf(user), Enabled: req.GetEnabled(), TeamId: req.GetTeamId(),
		TimeZone: req.GetTimeZone(), UpdatedAt: timestamppb.New(s.now()),
	}
	if p.Enabled {
		if p.TeamId == "" {
			return nil, fault.Errorf(ErrInvalid, "team_id is required to turn reminders on")
		}
		if user.GetEmail() == "" {
			return nil, fault.Errorf(ErrInvalid, "user.email is required to reach the user in Slack")
		}
		if !s.access.TeamActive(org, p.TeamId) {
			return nil, fault.Errorf(ErrPrecondition, "team %s is not an active Slack team of org %s (or the integration is off)", p.TeamId, org)
		}
	}
	wasOn := s.prefs.Enabled(org, user.GetId())
	if err := s.prefStore.Save(ctx, p); err != nil {
		return nil, err
	}
	s.prefs.Set(p)
	if p.Enabled && !wasOn {
		if err := s.backfill(ctx, org, user.GetId()); err != nil {
			// Saved: reminders of activities changed from now on come
			// anyway; the caller may set the preference again to retry.
			return nil, fault.Errorf(fault.Unavailable, "reminders are on, but the upcoming activities could not all be scheduled (try saving again): %v", err)
		}
	}
	if !p.Enabled {
		if err := s.timers.RemoveUser(ctx, org, user.GetId()); err != nil {
			// The choice is saved: every pending reminder is checked
			// against it when it fires, so none will post anyway.
			s.log.WarnContext(ctx, "removing a user's timers after reminders were turned off", "org", org, "user", user.GetId(), "err", err)
		}
	}
	return proto.CloneOf(p), nil
}

func checkIDs(org, user string) error {
	if _, err := topology.Token(org); err != nil {
		return fault.Errorf(ErrInvalid, "org_id: %v", err)
	}
	if _, err := topology.Token(user); err != nil {
		return fault.Errorf(ErrInvalid, "user id: %v", err)
	}
	return nil
}
