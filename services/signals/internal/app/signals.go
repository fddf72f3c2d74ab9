package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/topology"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
	integrationv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/integration/v1"
	signalsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/signals/v1"
	slackv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/slack/v1"

	"github.com/crmslack/crmslack/services/signals/internal/burst"
	"github.com/crmslack/crmslack/services/signals/internal/matrix"
	"github.com/crmslack/crmslack/services/signals/internal/render"
)

// Results of a signal: the "result" label of crmslack_signals_handled_total.
const (
	ResultPosted         = "posted"
	ResultGrouped        = "grouped"
	ResultDisabled       = "disabled"
	ResultDuplicate      = "duplicate"
	ResultUnreachable    = "owner_unreachable"
	ResultIntegrationOff = "integration_off"
)

// Origin marks the egress commands of this service, for audit and to pick
// out their outcomes.
const Origin = "signals"

// Idempotency keys (and event ids) of the commands, so a signal handled
// twice asks for nothing new and the egress's ledger posts once.
const (
	postPrefix    = "signals:post:"
	updatePrefix  = "signals:update:"
	locatedPrefix = "signals:located:"
)

// maxCAS bounds the read-modify-write loop on a group that other replicas
// change at the same time.
const maxCAS = 8

// HandleSignal is the consumer of crm.v1.SalesSignal: if the org's matrix
// ticks the signal's cell, the record owner hears of it in Slack, grouped
// with the customer's other recent signals.
func (s *Service) HandleSignal(ctx context.Context, ev *crmv1.SalesSignal) error {
	env := ev.GetEnvelope()
	org := env.GetOrgId()
	key := matrix.Key{Channel: ev.GetChannel(), Kind: ev.GetKind()}
	if _, err := matrix.Check(key); err != nil {
		return bus.Permanent(fmt.Errorf("signal %s: %w", env.GetEventId(), err))
	}
	rec, owner := ev.GetRecord(), ev.GetRecordOwner()
	if rec.GetModule() == "" || rec.GetId() == "" {
		return bus.Permanent(fmt.Errorf("signal %s names no customer record (record.module and record.id)", env.GetEventId()))
	}
	if strings.TrimSpace(owner.GetEmail()) == "" {
		return bus.Permanent(fmt.Errorf("signal %s: the record owner has no email, so no Slack account can be found", env.GetEventId()))
	}
	st := s.view.Get(org)
	if !st.Matrix.Enabled(key) {
		s.metrics.Signal(ResultDisabled)
		return nil
	}
	enabled, teams, known := s.access.Org(org)
	if !known || !enabled {
		s.metrics.Signal(ResultIntegrationOff)
		return nil
	}
	team, user, searched, err := s.findOwner(ctx, org, st, owner, teams)
	if err != nil {
		return err
	}
	if user == "" {
		reason := "no Slack user with this email in the org's active teams"
		if len(searched) == 0 {
			reason = "the org has no active Slack team"
		}
		return s.unreachable(ctx, org, owner, ev.GetSignalId(), searched, reason)
	}

	e := entryOf(ctx, ev, s.now)
	to := burst.Target{
		Org: org, Team: team, SlackUser: user,
		Owner:  burst.Person{ID: owner.GetId(), Name: owner.GetName(), Email: owner.GetEmail()},
		Record: burst.Record{Module: rec.GetModule(), ID: rec.GetId(), Name: rec.GetName()},
	}
	gk := groupKey(org, owner, rec)
	defer s.lock(gk)()
	cur, rev := s.groups.get(gk)
	for range maxCAS {
		next, action := burst.Add(cur, e, to, s.cfg.Window, func(first burst.Entry) string {
			return postPrefix + gk + ":" + first.EventID
		})
		if action != burst.Duplicate {
			nrev, err := s.state.PutGroup(ctx, gk, next, rev)
			if errors.Is(err, ErrConflict) {
				if cur, rev, err = s.reload(ctx, gk); err != nil {
					return err
				}
				continue
			}
			if err != nil {
				s.groups.forget(gk)
				return fmt.Errorf("storing signal group: %w", err)
			}
			s.groups.put(gk, next, nrev, s.now())
		}
		if err := s.send(ctx, gk, next, action, e.EventID); err != nil {
			return err
		}
		switch action {
		case burst.Post:
			s.metrics.Signal(ResultPosted)
		case burst.Duplicate:
			s.metrics.Signal(ResultDuplicate)
		default:
			s.metrics.Signal(ResultGrouped)
		}
		return nil
	}
	return fmt.Errorf("signal group %s kept changing under %d attempts", gk, maxCAS)
}

// send asks the egress for what action needs. A duplicate asks again for
// what its first handling asked, under the same idempotency key, in case
// that handling stopped before publishing.
func (s *Service) send(ctx context.Context, gk string, g burst.Group, action burst.Action, eventID string) error {
	switch action {
	case burst.Post:
		return s.post(ctx, g, eventID)
	case burst.Update:
		return s.update(ctx, g, updatePrefix+gk+":"+eventID, eventID)
	case burst.Duplicate:
		switch {
		case !g.Holds(eventID):
			// An earlier group's: its message has moved on.
		case g.First().EventID == eventID:
			return s.post(ctx, g, eventID)
		case g.Posted():
			return s.update(ctx, g, updatePrefix+gk+":"+eventID, eventID)
		}
	}
	return nil
}

// reload reads a group from the store after a write lost a race (another
// replica, or a group this replica had not cached).
func (s *Service) reload(ctx context.Context, gk string) (*burst.Group, uint64, error) {
	g, rev, err := s.state.Group(ctx, gk)
	if err != nil {
		s.groups.forget(gk)
		return nil, 0, fmt.Errorf("reading signal group: %w", err)
	}
	return g, rev, nil
}

func (s *Service) post(ctx context.Context, g burst.Group, cause string) error {
	first := g
	first.Entries = g.Entries[:1]
	msg, err := render.Render(s.cfg.Render, first)
	if err != nil {
		return bus.Permanent(err)
	}
	cmd := &slackv1.PostMessage{
		Envelope:       s.envelope(g.Org, g.PostKey, cause),
		IdempotencyKey: g.PostKey,
		TeamId:         g.Team,
		Target:         &slackv1.Target{Kind: &slackv1.Target_SlackUserId{SlackUserId: g.SlackUser}},
		Text:           msg.Text,
		BlocksJson:     msg.Blocks,
		Origin:         s.origin(g),
	}
	if err := s.pub.Publish(ctx, topology.SlackOut(g.Org, g.Team, "post"), cmd); err != nil {
		return fmt.Errorf("asking the egress to post: %w", err)
	}
	return nil
}

func (s *Service) update(ctx context.Context, g burst.Group, id, cause string) error {
	shown := g
	shown.Entries = g.Entries[:max(1, min(g.Shown, len(g.Entries)))]
	msg, err := render.Render(s.cfg.Render, shown)
	if err != nil {
		return bus.Permanent(err)
	}
	cmd := &slackv1.UpdateMessage{
		Envelope:       s.envelope(g.Org, id, cause),
		IdempotencyKey: id,
		TeamId:         g.Team,
		ChannelId:      g.Channel,
		Ts:             g.TS,
		Text:           msg.Text,
		BlocksJson:     msg.Blocks,
		Origin:         s.origin(g),
	}
	if err := s.pub.Publish(ctx, topology.SlackOut(g.Org, g.Team, "update"), cmd); err != nil {
		return fmt.Errorf("asking the egress to update: %w", err)
	}
	return nil
}

func (s *Service) envelope(org, id, cause string) *commonv1.Envelope {
	return &commonv1.Envelope{EventId: id, OrgId: org, OccurredAt: timestamppb.New(s.now()), SchemaVersion: 1, Producer: Origin, CausationId: cause}
}

func (s *Service) origin(g burst.Group) *slackv1.Origin {
	return &slackv1.Origin{Service: Origin, Purpose: "salessignal", OnBehalfOf: &commonv1.CrmUserRef{Id: g.Owner.ID, Name: g.Owner.Name, Email: g.Owner.Email}}
}

// HandleDelivered is the consumer of the egress's successes: a group's post
// landed, so the group learns where, and a message that signals joined
// while the post was on its way is brought up to date.
func (s *Service) HandleDelivered(ctx context.Context, ev *integrationv1.DeliverySucceeded) error {
	gk, ok := parsePostKey(ev.GetIdempotencyKey())
	if !ok {
		return nil
	}
	defer s.lock(gk)()
	cur, rev := s.groups.get(gk)
	if cur == nil || cur.PostKey != ev.GetIdempotencyKey() {
		var err error
		if cur, rev, err = s.reload(ctx, gk); err != nil {
			return err
		}
	}
	for range maxCAS {
		if cur == nil || cur.PostKey != ev.GetIdempotencyKey() || cur.Posted() {
			return nil // a group since replaced, or an outcome seen before
		}
		if ev.GetChannelId() == "" || ev.GetTs() == "" {
			return bus.Permanent(fmt.Errorf("delivery of %s succeeded without channel and ts", ev.GetIdempotencyKey()))
		}
		next, stale := burst.Located(*cur, ev.GetChannelId(), ev.GetTs())
		nrev, err := s.state.PutGroup(ctx, gk, next, rev)
		if errors.Is(err, ErrConflict) {
			if cur, rev, err = s.reload(ctx, gk); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			s.groups.forget(gk)
			return fmt.Errorf("storing signal group: %w", err)
		}
		s.groups.put(gk, next, nrev, s.now())
		if stale {
			id := locatedPrefix + strings.TrimPrefix(next.PostKey, postPrefix) + ":" + strconv.Itoa(next.Shown)
			return s.update(ctx, next, id, ev.GetEnvelope().GetEventId())
		}
		return nil
	}
	return fmt.Errorf("signal group %s kept changing under %d attempts", gk, maxCAS)
}

// HandleFailed is the consumer of the egress's failures: a group whose post
// failed is dropped, so the customer's next signal starts a new message;
// an owner the egress could not find is reported.
func (s *Service) HandleFailed(ctx context.Context, ev *integrationv1.DeliveryFailed) error {
	gk, ok := parsePostKey(ev.GetIdempotencyKey())
	if !ok {
		if strings.HasPrefix(ev.GetIdempotencyKey(), updatePrefix) || strings.HasPrefix(ev.GetIdempotencyKey(), locatedPrefix) {
			s.log.WarnContext(ctx, "updating a grouped signals message failed", "key", ev.GetIdempotencyKey(), "code", ev.GetCode().String(), "reason", ev.GetReason())
		}
		return nil
	}
	defer s.lock(gk)()
	cur, rev, err := s.state.Group(ctx, gk)
	if err != nil {
		return fmt.Errorf("reading signal group: %w", err)
	}
	if cur == nil || cur.PostKey != ev.GetIdempotencyKey() {
		return nil
	}
	s.log.WarnContext(ctx, "posting a signal to its owner failed", "org", cur.Org, "team", cur.Team, "owner", cur.Owner.ID, "code", ev.GetCode().String(), "reason", ev.GetReason())
	s.groups.forget(gk)
	if err := s.state.DeleteGroup(ctx, gk, rev); err != nil && !errors.Is(err, ErrConflict) {
		return fmt.Errorf("dropping the failed signal group: %w", err)
	}
	if ev.GetCode() == integrationv1.DeliveryFailureCode_DELIVERY_FAILURE_CODE_TARGET_NOT_FOUND {
		owner := &commonv1.CrmUserRef{Id: cur.Owner.ID, Name: cur.Owner.Name, Email: cur.Owner.Email}
		return s.unreachable(ctx, cur.Org, owner, cur.First().SignalID, []string{cur.Team}, "Slack no longer knows the owner's account: "+ev.GetReason())
	}
	return nil
}

// unreachable counts a signal whose owner has no Slack account and reports
// the owner once. The report is published before it is marked, under an id
// of its own, so a crash in between publishes it again only into the
// stream's duplicate window.
func (s *Service) unreachable(ctx context.Context, org string, owner *commonv1.CrmUserRef, signalID string, searched []string, reason string) error {
	s.metrics.Signal(ResultUnreachable)
	who := strings.ToLower(strings.TrimSpace(owner.GetEmail()))
	done, err := s.state.Reported(ctx, org, who)
	if err != nil {
		return fmt.Errorf("checking whether owner was reported: %w", err)
	}
	if done {
		return nil
	}
	ev := &signalsv1.SignalOwnerUnreachable{
		Envelope: s.envelope(org, "signals:unreachable:"+hash(org, who), signalID),
		Owner:    owner, SignalId: signalID, TeamIds: searched, Reason: reason,
	}
	if err := s.pub.Publish(ctx, topology.SignalOwnerUnreachable(org), ev); err != nil {
		return fmt.Errorf("reporting unreachable owner: %w", err)
	}
	if err := s.state.MarkReported(ctx, org, who); err != nil {
		return fmt.Errorf("marking owner reported: %w", err)
	}
	s.metrics.Unreachable()
	s.log.WarnContext(ctx, "record owner has no Slack account in the org's teams; their signals reach nobody", "org", org, "owner", owner.GetId(), "teams", len(searched))
	return nil
}

func (s *Service) findOwner(ctx context.Context, org string, st matrix.Settings, owner *commonv1.CrmUserRef, active []string) (team, user string, searched []string, err error) {
	for _, t := range st.TeamsFor(owner.GetId(), active) {
		searched = append(searched, t)
		u, err := s.dir.FindUser(ctx, org, t, owner.GetEmail())
		if err != nil {
			return "", "", searched, fmt.Errorf("looking for the record owner in team %s: %w", t, err)
		}
		if u != "" {
			return t, u, searched, nil
		}
	}
	return "", "", searched, nil
}

// entryOf is the signal as a group keeps it. Its time is when it happened,
// else when the bus stored it: the same on every delivery.
func entryOf(ctx context.Context, ev *crmv1.SalesSignal, now func() time.Time) burst.Entry {
	at := ev.GetEnvelope().GetOccurredAt().AsTime()
	if ev.GetEnvelope().GetOccurredAt() == nil {
		at = now()
		if info, ok := bus.MessageInfo(ctx); ok && !info.Stored.IsZero() {
			at = info.Stored
		}
	}
	return burst.Entry{
		EventID: ev.GetEnvelope().GetEventId(), SignalID: ev.GetSignalId(),
		Channel: int32(ev.GetChannel()), Kind: ev.GetKind(), At: at.UTC(),
		Title: ev.GetTitle(), Summary: ev.GetSummary(), From: ev.GetFrom(), FromPhone: ev.GetFromPhone(), URL: ev.GetUrl(),
	}
}

// OwnerKey is the ordering key of a signal: its org and record owner.
// Signals of one key are handled one at a time, in stream order.
func OwnerKey(ev *crmv1.SalesSignal) string {
	return ev.GetEnvelope().GetOrgId() + "\x00" + strings.ToLower(strings.TrimSpace(ev.GetRecordOwner().GetEmail()))
}

// groupKey names the group of one customer's signals to one owner.
func groupKey(org string, owner *commonv1.CrmUserRef, rec *commonv1.RecordRef) string {
	return hash(org, strings.ToLower(owner.GetEmail()), rec.GetModule(), rec.GetId())
}

func parsePostKey(k string) (string, bool) {
	rest, ok := strings.CutPrefix(k, postPrefix)
	if !ok {
		return "", false
	}
	gk, _, ok := strings.Cut(rest, ":")
	return gk, ok && gk != ""
}

// hash is a fixed-length id of its parts, usable as a key token.
func hash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		_, _ = h.Write([]byte(p))
		_, _ = h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}
