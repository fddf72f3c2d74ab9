package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/slack-go/slack"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/card"
	"github.com/crmslack/crmslack/libs/topology"
	slackv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/slack/v1"

	"github.com/crmslack/crmslack/libs/slacktext"
	"github.com/crmslack/crmslack/services/sharing/internal/share"
)

// kindButton keys share ids of button shares apart from the CRM's.
const kindButton = "button"

// ShareFromButton handles a click on "Share this record" under a user's
// private /zcrm results: the record's card is posted, with "shared by"
// attribution, to the conversation where the command was typed, and the
// private results are replaced by a note saying it was shared. Clicks on
// other buttons are ignored.
//
// Trust: the click is a block_actions payload whose signature the gateway
// verified, so it comes from Slack, from the Slack user it names. The
// button's value is a grant the query service signed (SHARE_BUTTON_KEY)
// for that user, team and channel and that record, expiring with the
// results: a click with any other value, or by anyone else, is refused.
// What is checked again here: the org in the button is one the team
// serves (never another org's record into this team), the org's
// integration is on and the team active, the Slack user still exists in
// the team and is still an active CRM user of the org (asked of the query
// service, which follows the CRM's users), the record still exists, and
// the conversation is one the app may post in.
//
// It returns an error only when a dependency failed and the click should
// be handled again; refusals are answered in Slack and recorded.
func (s *Service) ShareFromButton(ctx context.Context, ev *slackv1.InteractionReceived) error {
	if ev.GetActionId() != card.ShareActionID {
		return nil
	}
	log := s.log.With("interaction", ev.GetEnvelope().GetEventId(), "team", ev.GetTeamId(), "user", ev.GetUserId())
	ref, err := s.cfg.Buttons.Open(ev.GetValue(), ev.GetTeamId(), ev.GetChannelId(), ev.GetUserId())
	if err != nil {
		log.WarnContext(ctx, "share button refused", "err", err)
		s.answerBadButton(ctx, ev, err)
		return nil
	}
	if env := ev.GetEnvelope().GetOrgId(); !strings.HasPrefix(env, "slack:") && env != ref.Org {
		log.WarnContext(ctx, "share button of another org than the team's", "org", env, "button_org", ref.Org)
		s.answerBadButton(ctx, ev, card.ErrNotYours)
		return nil
	}
	if !tokenOK(ref.Org) || !tokenOK(ev.GetTeamId()) || ev.GetChannelId() == "" || ev.GetUserId() == "" {
		log.WarnContext(ctx, "share button without org, team, channel or user; ignored")
		return nil
	}
	sh := share.Share{
		ID:  share.ShareID(ref.Org, kindButton, ev.GetEnvelope().GetEventId()),
		Org: ref.Org, Kind: share.KindRecord, Module: ref.Module, RecordID: ref.ID,
		What: ref.Module + " " + ref.ID, Team: ev.GetTeamId(), TargetKind: share.Channels,
		Targets: []string{ev.GetChannelId()}, SharerSlackUser: ev.GetUserId(), Via: share.ViaButton, SharedAt: s.now(),
	}
	// The org's switch and the team come first: without them nothing may
	// reach Slack, not even an answer (the egress would drop it anyway).
	if err := s.checkTeam(sh.Org, sh.Team); err != nil {
		if errors.Is(err, share.ErrUnavailable) {
			return err
		}
		s.refusedButton(ctx, sh, err, nil)
		return nil
	}
	items, err := s.buttonShare(ctx, &sh, ev)
	if err != nil {
		if !share.IsRefusal(err) {
			return err
		}
		s.refusedButton(ctx, sh, err, ev)
		return nil
	}
	created, err := s.repo.Create(ctx, sh)
	if err != nil {
		return fmt.Errorf("recording share %s: %w", sh.ID, err)
	}
	if !created {
		prev, found, err := s.repo.Get(ctx, sh.ID)
		if err != nil {
			return fmt.Errorf("reading share %s: %w", sh.ID, err)
		}
		if found && prev.Refused {
			return nil // the first handling of this click refused it
		}
	}
	if err := s.pub.PublishBatch(ctx, items); err != nil {
		return fmt.Errorf("sending share %s to Slack: %w", sh.ID, err)
	}
	s.cfg.Observe(sh.Kind, sh.Via, "shared")
	log.InfoContext(ctx, "shared from a /zcrm result", "share", sh.ID, "org", sh.Org, "channel", ev.GetChannelId())
	return nil
}

// buttonShare checks the clicker, the record and the conversation, and
// builds the card's post and the note that replaces the private results.
func (s *Service) buttonShare(ctx context.Context, sh *share.Share, ev *slackv1.InteractionReceived) ([]bus.Published, error) {
	u, err := s.teams.SlackUser(ctx, sh.Team, ev.GetUserId())
	switch {
	case errors.Is(err, share.ErrNotFound) || err == nil && (u.Deleted || u.Email == ""):
		return nil, share.Errorf(share.ErrDenied, "your Slack account could not be matched to a CRM user, so the record was not shared")
	case err != nil:
		return nil, err
	}
	sh.Sharer = share.Person{Name: u.RealName, Email: u.Email}
	active, err := s.records.IsCrmUser(ctx, sh.Org, u.Email)
	if err != nil {
		return nil, err
	}
	if !active {
		return nil, share.Errorf(share.ErrDenied, "you are not an active user of the CRM any more, so the record was not shared")
	}
	rec, schema, err := s.records.Record(ctx, sh.Org, sh.Module, sh.RecordID)
	if err != nil {
		if errors.Is(err, share.ErrNotFound) {
			return nil, share.Errorf(share.ErrNotFound, "this record is no longer in the CRM, so it was not shared")
		}
		return nil, err
	}
	sh.What = describe(rec, schema)
	if err := cardView(schema); err != nil {
		return nil, err
	}
	dir, err := s.teams.Directory(ctx, sh.Org, sh.Team)
	if err != nil {
		return nil, err
	}
	if c, ok := dir.Channel(ev.GetChannelId()); !ok || !c.CanPost {
		return nil, share.Errorf(share.ErrPrecondition, "I can't post in this conversation: add the app to the channel, or share from a channel it is in")
	}
	cd, err := card.Render(card.Input{
		Config: card.Config{BaseURL: s.cfg.CRMBaseURL}, Record: rec, Schema: schema,
		SharedBy: sharerName(sh.Sharer), SharedBySlackUser: ev.GetUserId(),
	})
	if err != nil {
		return nil, share.Errorf(share.ErrInvalid, "the record cannot be shown as a card: %v", err)
	}
	blocks, err := json.Marshal(slack.Blocks{BlockSet: cd.Blocks})
	if err != nil {
		return nil, fmt.Errorf("encoding the card: %w", err)
	}
	postID := share.CommandID(sh.ID, ev.GetChannelId())
	sh.Commands = []string{postID}
	cause := ev.GetEnvelope().GetEventId()
	post := &slackv1.PostMessage{
		Envelope: s.envelope(sh.Org, postID, cause),
		// The click's id: however often the click is handled, one post.
		IdempotencyKey: cause,
		TeamId:         sh.Team,
		Target:         target(share.Channels, ev.GetChannelId()),
		Text:           cd.Text,
		BlocksJson:     blocks,
		Origin:         origin(PurposeButton, sh.Sharer),
	}
	note := fmt.Sprintf("You shared *%s* in <#%s>.", slacktext.Escape(title(sh.What)), ev.GetChannelId())
	items := []bus.Published{{Subject: topology.SlackOut(sh.Org, sh.Team, "post"), Event: post}}
	if r := s.respond(sh, ev, note, true); r != nil {
		items = append(items, *r)
	}
	return items, nil
}

// title is the record's name from its description, for the note.
func title(what string) string {
	if _, t, ok := strings.Cut(what, " · "); ok {
		return t
	}
	return what
}

// respond is an answer through the interaction's response_url: replace
// swaps the private results for it, otherwise it is a new ephemeral
// message under them. Nil without a response_url.
func (s *Service) respond(sh *share.Share, ev *slackv1.InteractionReceived, text string, replace bool) *bus.Published {
	if ev.GetResponseUrl() == "" {
		return nil
	}
	id := share.CommandID(sh.ID, share.RespondSuffix)
	return &bus.Published{Subject: topology.SlackOut(sh.Org, sh.Team, "respond"), Event: &slackv1.RespondToURL{
		Envelope:        s.envelope(sh.Org, id, ev.GetEnvelope().GetEventId()),
		IdempotencyKey:  ev.GetEnvelope().GetEventId() + "/" + share.RespondSuffix,
		TeamId:          sh.Team,
		ResponseUrl:     ev.GetResponseUrl(),
		ResponseType:    slackv1.ResponseType_RESPONSE_TYPE_EPHEMERAL,
		ReplaceOriginal: replace,
		Text:            text,
		Origin:          origin(PurposeButton, sh.Sharer),
	}}
}

// answerBadButton tells the clicker why a button that is not a valid grant
// did nothing, when the click's org is known (the gateway resolved it);
// otherwise the gateway's own follow-up answers.
func (s *Service) answerBadButton(ctx context.Context, ev *slackv1.InteractionReceived, why error) {
	org := ev.GetEnvelope().GetOrgId()
	if strings.HasPrefix(org, "slack:") || !tokenOK(org) || !tokenOK(ev.GetTeamId()) {
		return
	}
	text := "This Share button is not valid here. Run /zcrm again to share a record."
	if errors.Is(why, card.ErrGrantExpired) {
		text = "These results have expired. Run /zcrm again to share a record."
	}
	sh := share.Share{ID: share.ShareID(org, kindButton, ev.GetEnvelope().GetEventId()), Org: org, Team: ev.GetTeamId()}
	s.cfg.Observe(share.KindRecord, share.ViaButton, "refused")
	if r := s.respond(&sh, ev, text, false); r != nil {
		if err := s.pub.PublishBatch(ctx, []bus.Published{*r}); err != nil {
			s.log.WarnContext(ctx, "answering an invalid share button", "org", org, "err", err)
		}
	}
}

// refusedButton records a refused click and, when ev is given, tells the
// user why under their results.
func (s *Service) refusedButton(ctx context.Context, sh share.Share, why error, ev *slackv1.InteractionReceived) {
	s.cfg.Observe(sh.Kind, sh.Via, "refused")
	s.log.InfoContext(ctx, "share button refused", "org", sh.Org, "team", sh.Team, "user", sh.SharerSlackUser, "reason", why.Error())
	sh.Refused, sh.Reason, sh.Commands = true, why.Error(), nil
	created, err := s.repo.Create(context.WithoutCancel(ctx), sh)
	if err != nil {
		s.log.WarnContext(ctx, "recording a refused share", "org", sh.Org, "err", err)
	}
	if ev == nil || !created && err == nil {
		return
	}
	if r := s.respond(&sh, ev, why.Error(), false); r != nil {
		if err := s.pub.PublishBatch(ctx, []bus.Published{*r}); err != nil {
			s.log.WarnContext(ctx, "answering a refused share button", "org", sh.Org, "err", err)
		}
	}
}
