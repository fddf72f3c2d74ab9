// Package command decodes the Slack commands delivery consumes (the
// slack.v1 messages on slack.out.v1.<org>.<team>.<kind>, stored with a
// partition token appended) into one shape, and
// names the lane each one is delivered in: commands of one lane are carried
// out one at a time in stream order, lanes run independently.
package command

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	slackv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/slack/v1"

	"github.com/crmslack/crmslack/services/delivery/internal/targets"
)

// Kind is the last token of a command's subject.
type Kind string

// Kinds of commands.
const (
	Post      Kind = "post"
	Update    Kind = "update"
	Ephemeral Kind = "ephemeral"
	Respond   Kind = "respond"
	Upload    Kind = "upload"
)

// Command is one decoded command. Exactly one of the payload fields is set,
// matching Kind.
type Command struct {
	Kind Kind
	// Org and Team come from the envelope and the payload; the subject's
	// tokens must agree with them.
	Org, Team string
	// ID is the envelope's event id, the command's identity.
	ID string
	// IdempotencyKey is the payload's key, or the event id when empty.
	IdempotencyKey string
	RequestedAt    time.Time
	// Origin is "service/purpose", for audit.
	Origin string
	// Traceparent is the envelope's trace, if any.
	Traceparent string

	PostMessage   *slackv1.PostMessage
	UpdateMessage *slackv1.UpdateMessage
	PostEphemeral *slackv1.PostEphemeral
	RespondToURL  *slackv1.RespondToURL
	UploadFile    *slackv1.UploadFile
}

// ErrUndecodable is wrapped by Decode errors for a message that is not a
// command at all: it has no identity, so no outcome can be reported and it
// goes to the dead-letter stream.
var ErrUndecodable = errors.New("undecodable command")

// ErrInvalid is wrapped by Decode errors for a command that has an identity
// but cannot be carried out as written; it is reported as failed.
var ErrInvalid = errors.New("invalid command")

// payload is what every command message has.
type payload interface {
	proto.Message
	GetEnvelope() *commonv1.Envelope
	GetIdempotencyKey() string
	GetTeamId() string
	GetOrigin() *slackv1.Origin
}

// Decode reads a command from its subject and payload. The subject is
// slack.out.v1.<org>.<team>.<kind> as published, or with the partition
// token the stream appends. On an ErrInvalid error the returned command is
// still usable for reporting (ID, Org, Team, Kind set).
func Decode(subject string, data []byte) (*Command, error) {
	toks := strings.Split(subject, ".")
	if len(toks) == 7 && isPartition(toks[6]) {
		toks = toks[:6]
	}
	if len(toks) != 6 || toks[0] != "slack" || toks[1] != "out" || toks[2] != "v1" {
		return nil, fmt.Errorf("%w: subject %q is not slack.out.v1.<org>.<team>.<kind>[.<partition>]", ErrUndecodable, subject)
	}
	subjOrg, subjTeam, kind := toks[3], toks[4], Kind(toks[5])
	c := &Command{Kind: kind}
	var p payload
	switch kind {
	case Post:
		c.PostMessage = &slackv1.PostMessage{}
		p = c.PostMessage
	case Update:
		c.UpdateMessage = &slackv1.UpdateMessage{}
		p = c.UpdateMessage
	case Ephemeral:
		c.PostEphemeral = &slackv1.PostEphemeral{}
		p = c.PostEphemeral
	case Respond:
		c.RespondToURL = &slackv1.RespondToURL{}
		p = c.RespondToURL
	case Upload:
		c.UploadFile = &slackv1.UploadFile{}
		p = c.UploadFile
	default:
		return nil, fmt.Errorf("%w: unknown kind %q in subject %q", ErrUndecodable, kind, subject)
	}
	if err := proto.Unmarshal(data, p); err != nil {
		return nil, fmt.Errorf("%w: %s payload (%d bytes): %v", ErrUndecodable, kind, len(data), err)
	}
	env := p.GetEnvelope()
	if env.GetEventId() == "" || env.GetOrgId() == "" {
		return nil, fmt.Errorf("%w: %s without envelope event_id or org_id", ErrUndecodable, kind)
	}
	c.ID, c.Org, c.Team = env.GetEventId(), env.GetOrgId(), p.GetTeamId()
	c.IdempotencyKey = p.GetIdempotencyKey()
	if c.IdempotencyKey == "" {
		c.IdempotencyKey = c.ID
	}
	if ts := env.GetOccurredAt(); ts != nil {
		c.RequestedAt = ts.AsTime()
	}
	if o := p.GetOrigin(); o != nil {
		c.Origin = o.GetService()
		if o.GetPurpose() != "" {
			c.Origin += "/" + o.GetPurpose()
		}
	}
	c.Traceparent = env.GetTrace().GetTraceparent()

	switch {
	case c.Org != subjOrg:
		return c, fmt.Errorf("%w: envelope org %q differs from the subject's %q", ErrInvalid, c.Org, subjOrg)
	case c.Team == "":
		return c, fmt.Errorf("%w: no team_id", ErrInvalid)
	case c.Team != subjTeam:
		return c, fmt.Errorf("%w: team_id %q differs from the subject's %q", ErrInvalid, c.Team, subjTeam)
	}
	return c, c.validate()
}

// isPartition reports whether tok is a partition token: a number.
func isPartition(tok string) bool {
	if tok == "" || len(tok) > 4 {
		return false
	}
	for _, r := range tok {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func (c *Command) validate() error {
	switch c.Kind {
	case Post:
		if targetOf(c.PostMessage.GetTarget()) == (targets.Target{}) {
			return fmt.Errorf("%w: post without a target", ErrInvalid)
		}
	case Update:
		if c.UpdateMessage.GetChannelId() == "" || c.UpdateMessage.GetTs() == "" {
			return fmt.Errorf("%w: update without channel_id and ts", ErrInvalid)
		}
	case Ephemeral:
		if c.PostEphemeral.GetChannelId() == "" || c.PostEphemeral.GetSlackUserId() == "" {
			return fmt.Errorf("%w: ephemeral without channel_id and slack_user_id", ErrInvalid)
		}
	case Respond:
		if c.RespondToURL.GetResponseUrl() == "" {
			return fmt.Errorf("%w: respond without response_url", ErrInvalid)
		}
	case Upload:
		u := c.UploadFile
		switch {
		case len(u.GetTargets()) == 0:
			return fmt.Errorf("%w: upload without targets", ErrInvalid)
		case len(u.GetContent()) == 0:
			return fmt.Errorf("%w: upload without content", ErrInvalid)
		case u.GetFilename() == "":
			return fmt.Errorf("%w: upload without filename", ErrInvalid)
		}
		for i, t := range u.GetTargets() {
			if targetOf(t) == (targets.Target{}) {
				return fmt.Errorf("%w: upload target %d is empty", ErrInvalid, i)
			}
		}
	}
	return nil
}

// targetOf converts the contract's target.
func targetOf(t *slackv1.Target) targets.Target {
	switch k := t.GetKind().(type) {
	case *slackv1.Target_ChannelId:
		return targets.Target{ChannelID: k.ChannelId}
	case *slackv1.Target_SlackUserId:
		return targets.Target{UserID: k.SlackUserId}
	case *slackv1.Target_Email:
		return targets.Target{Email: k.Email}
	}
	return targets.Target{}
}

// Target is a post's target.
func (c *Command) Target() targets.Target { return targetOf(c.PostMessage.GetTarget()) }

// UploadTargets are an upload's targets.
func (c *Command) UploadTargets() []targets.Target {
	out := make([]targets.Target, 0, len(c.UploadFile.GetTargets()))
	for _, t := range c.UploadFile.GetTargets() {
		out = append(out, targetOf(t))
	}
	return out
}

// Lane names the sequence c is delivered in. Posts and updates to one
// conversation share a lane, so an edit never overtakes the post it edits
// and messages to a channel arrive in the order they were issued. Other
// kinds have lanes of their own, so an ephemeral reply never waits behind a
// rate-limited channel's backlog.
func (c *Command) Lane() string {
	switch c.Kind {
	case Post:
		t := c.Target()
		switch {
		case t.ChannelID != "":
			return "msg/" + c.Team + "/" + t.ChannelID
		case t.UserID != "":
			return "msg/" + c.Team + "/@" + t.UserID
		default:
			return "msg/" + c.Team + "/email:" + strings.ToLower(strings.TrimSpace(t.Email))
		}
	case Update:
		return "msg/" + c.Team + "/" + c.UpdateMessage.GetChannelId()
	case Ephemeral:
		return "eph/" + c.Team + "/" + c.PostEphemeral.GetChannelId() + "/" + c.PostEphemeral.GetSlackUserId()
	case Respond:
		return "resp/" + c.RespondToURL.GetResponseUrl()
	case Upload:
		keys := make([]string, 0, len(c.UploadFile.GetTargets()))
		for _, t := range c.UploadTargets() {
			keys = append(keys, t.String())
		}
		slices.Sort(keys)
		return "upload/" + c.Team + "/" + strings.Join(keys, ",")
	}
	return "other/" + c.ID
}
