package share

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
)

// Kinds of share.
const (
	KindRecord = "record"
	KindChart  = "chart"
)

// How a share was asked for.
const (
	ViaGRPC   = "grpc"   // SharingService
	ViaBus    = "bus"    // a Share*Requested message
	ViaButton = "button" // "Share this record" under /zcrm results
)

// TargetKind says whether a share's targets are people or channels.
type TargetKind string

// Target kinds, as the CRM's share dialog asks.
const (
	Users    TargetKind = "users"
	Channels TargetKind = "channels"
)

// MaxTargets bounds the targets of one share: the CRM's dialog picks a
// handful, and each target is one Slack message.
const MaxTargets = 20

// MaxMessage bounds the sharer's message, in runes (Slack's section text
// limit is 3000; the card keeps the rest for itself).
const MaxMessage = 2000

// Person is who shared: a CRM user, or for the share button the Slack
// user's profile.
type Person struct {
	ID, Name, Email string
}

// Share is one recorded share, accepted or refused.
type Share struct {
	ID   string
	Org  string
	Kind string
	// What was shared, for people: "Deals d1 · Q4 licences", a report name.
	What             string
	Module, RecordID string
	Team             string
	TargetKind       TargetKind
	Targets          []string
	Sharer           Person
	SharerSlackUser  string
	Via              string
	SharedAt         time.Time
	// Refused shares sent nothing; Reason says why.
	Refused bool
	Reason  string
	// Commands are the ids of the Slack commands sent, one per message
	// (a post per target, or one upload).
	Commands []string
	// Fingerprint identifies the request, so a request id reused for
	// another share is told apart from a retry.
	Fingerprint string
}

// Access is an org's standing as the team registry publishes it.
type Access struct {
	Enabled bool
	// Teams are the org's active teams.
	Teams []string
}

// CheckTeam explains why org may not share to team, or returns nil.
// known is false for an org the registry has never written.
func CheckTeam(org string, a Access, known bool, team string) error {
	switch {
	case !known:
		return Errorf(ErrPrecondition, "org %s has no Slack integration: an admin must add a Slack team first", org)
	case !a.Enabled:
		return Errorf(ErrPrecondition, "the Slack integration of org %s is disabled", org)
	case !slices.Contains(a.Teams, team):
		return Errorf(ErrNotFound, "Slack team %s is not an active team of org %s: only teams an admin added can be shared to", team, org)
	}
	return nil
}

// Team is a Slack team a sharer may use.
type Team struct {
	ID, Name, Domain string
}

// Channel is a channel of a team.
type Channel struct {
	ID, Name string
	Private  bool
	// CanPost: the app may post there (it is a member, or the channel is
	// public and the app has chat:write.public).
	CanPost bool
}

// User is an active person of a team.
type User struct {
	ID, Name, RealName, Email string
}

// Directory is where CRM data may go inside one team.
type Directory struct {
	Team     string
	Channels []Channel
	Users    []User
}

// UserByEmail finds a person by email, ignoring case.
func (d Directory) UserByEmail(email string) (User, bool) {
	email = strings.TrimSpace(email)
	if email == "" {
		return User{}, false
	}
	for _, u := range d.Users {
		if strings.EqualFold(u.Email, email) {
			return u, true
		}
	}
	return User{}, false
}

// Channel finds a channel by id.
func (d Directory) Channel(id string) (Channel, bool) {
	i := slices.IndexFunc(d.Channels, func(c Channel) bool { return c.ID == id })
	if i < 0 {
		return Channel{}, false
	}
	return d.Channels[i], true
}

// Targets checks a share's targets against the team's directory: every
// one must be a channel the app can post in, or a person, of that team. It
// returns them without duplicates, in the order given.
func Targets(kind TargetKind, ids []string, d Directory) ([]string, error) {
	var out []string
	for _, id := range ids {
		id = strings.TrimSpace(id)
		if id == "" || slices.Contains(out, id) {
			continue
		}
		out = append(out, id)
	}
	switch {
	case len(out) == 0:
		return nil, Errorf(ErrInvalid, "targets: name at least one %s", kind)
	case len(out) > MaxTargets:
		return nil, Errorf(ErrInvalid, "targets: %d %s, at most %d per share", len(out), kind, MaxTargets)
	}
	for _, id := range out {
		switch kind {
		case Channels:
			c, ok := d.Channel(id)
			if !ok {
				return nil, Errorf(ErrDenied, "%q is not a channel of Slack team %s: CRM data may only be shared inside the chosen team", id, d.Team)
			}
			if !c.CanPost {
				return nil, Errorf(ErrPrecondition, "the app cannot post in #%s (%s): invite it to the channel first", c.Name, c.ID)
			}
		case Users:
			if !slices.ContainsFunc(d.Users, func(u User) bool { return u.ID == id }) {
				return nil, Errorf(ErrDenied, "%q is not an active person of Slack team %s: CRM data may only be shared inside the chosen team", id, d.Team)
			}
		default:
			return nil, Errorf(ErrInvalid, "target_kind: say whether the targets are users or channels")
		}
	}
	return out, nil
}

// idPrefix starts every share id, so a command id can be traced back.
const idPrefix = "sh-"

// ShareID is the id of a share. With a request id it is derived from it
// (and the org and kind), so a retried request is the same share and its
// commands the same commands; without one it is random.
func ShareID(org, kind, requestID string) string {
	if requestID == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		return idPrefix + hex.EncodeToString(b[:])
	}
	sum := sha256.Sum256([]byte(org + "\x00" + kind + "\x00" + requestID))
	return idPrefix + hex.EncodeToString(sum[:16])
}

// Command suffixes for commands that go to no single target.
const (
	UploadSuffix  = "upload"
	RespondSuffix = "respond"
)

// CommandID is the event id (and Nats-Msg-Id) of a share's command to one
// target, or with UploadSuffix or RespondSuffix its upload or its reply.
func CommandID(shareID, target string) string { return shareID + "/" + target }

// ShareOfCommand returns the share a command id belongs to.
func ShareOfCommand(commandID string) (string, bool) {
	id, _, ok := strings.Cut(commandID, "/")
	if !ok || !strings.HasPrefix(id, idPrefix) || len(id) <= len(idPrefix) {
		return "", false
	}
	return id, true
}

// RequestIDOK says whether a caller's request id is usable: printable, no
// slash, at most 200 bytes.
func RequestIDOK(id string) bool {
	return len(id) <= 200 && !strings.ContainsFunc(id, func(r rune) bool {
		return r == '/' || unicode.IsControl(r) || unicode.IsSpace(r)
	})
}

// Outcome is one delivery outcome of a share's command.
type Outcome struct {
	// ID is the outcome event's id: recording it twice is a no-op.
	ID        string
	ShareID   string
	CommandID string
	Delivered bool
	// Unsent: the command never reached the bus (Reason says why).
	Unsent  bool
	Reason  string
	Channel string
	At      time.Time
}

// Outcomes of a share, as ListShares reports them.
const (
	OutcomePending   = "pending"
	OutcomeDelivered = "delivered"
	OutcomePartial   = "partial"
	OutcomeFailed    = "failed"
	OutcomeRefused   = "refused"
)

// Summarize adds a share's delivery outcomes up: a command counts as
// delivered once any outcome says so (a retried command may have failed
// first), failed when only failures were reported, pending otherwise.
func Summarize(s Share, outs []Outcome) (outcome, detail string) {
	if s.Refused {
		return OutcomeRefused, s.Reason
	}
	type state struct {
		delivered bool
		failed    string
	}
	st := make(map[string]*state, len(s.Commands))
	for _, c := range s.Commands {
		st[c] = &state{}
	}
	for _, o := range outs {
		c := st[o.CommandID]
		if c == nil {
			continue
		}
		if o.Delivered {
			c.delivered = true
		} else if c.failed == "" {
			c.failed = o.Reason
			if c.failed == "" {
				c.failed = "failed"
			}
		}
	}
	delivered, pending := 0, 0
	var failures []string
	for _, id := range s.Commands {
		c := st[id]
		switch {
		case c.delivered:
			delivered++
		case c.failed != "":
			_, target, _ := strings.Cut(id, "/")
			failures = append(failures, fmt.Sprintf("%s: %s", target, c.failed))
		default:
			pending++
		}
	}
	total := len(s.Commands)
	switch {
	case total == 0:
		return OutcomePending, ""
	case pending > 0:
		return OutcomePending, fmt.Sprintf("%d of %d delivered so far", delivered, total)
	case delivered == total:
		return OutcomeDelivered, ""
	case delivered == 0:
		return OutcomeFailed, strings.Join(failures, "; ")
	}
	return OutcomePartial, fmt.Sprintf("%d of %d delivered; %s", delivered, total, strings.Join(failures, "; "))
}
