package card

import (
	"errors"
	"fmt"
	"time"

	"github.com/crmslack/crmslack/libs/blockkit"
	"github.com/crmslack/crmslack/libs/signed"
)

// ShareActionID is the action_id of the "Share this record" button; the
// gateway routes block_actions with it to sharing.
const ShareActionID = "card_share"

// OpenActionID is the action_id of the "Open in CRM" link button. Slack
// still sends a block_actions payload for link buttons, which must be acked.
const OpenActionID = "card_open"

// GrantTTL is how long a Share button works: as long as the response_url
// of the answer holding it.
const GrantTTL = 30 * time.Minute

// Errors of Buttons.Open.
var (
	// ErrBadRef: the value is not a Share button's signed grant (forged,
	// altered, or signed under a key no longer configured).
	ErrBadRef = errors.New("card: not a valid Share button")
	// ErrGrantExpired: the button is older than GrantTTL.
	ErrGrantExpired = errors.New("card: the Share button has expired")
	// ErrNotYours: clicked by another user, team or channel than the one
	// the results were shown to.
	ErrNotYours = errors.New("card: the Share button was issued to someone else")
)

// Ref names a record across orgs.
type Ref struct {
	Org    string `json:"o"`
	Module string `json:"m"`
	ID     string `json:"i"`
}

// Grant is what a Share button allows: the Slack user User of team Team,
// in channel Channel, to share the record Ref, until Expires (Unix
// seconds). It travels in the button's value, signed, with one-letter keys
// to stay short.
type Grant struct {
	Ref
	Team    string `json:"t"`
	Channel string `json:"c"`
	User    string `json:"u"`
	Expires int64  `json:"x"`
}

// Buttons signs and checks Share button values with SHARE_BUTTON_KEY: the
// query service signs the buttons it shows, sharing checks the clicks, so
// a click cannot name another record, user, team or channel than the
// results it came from.
type Buttons struct {
	codec *signed.Codec
	now   func() time.Time
}

// NewButtons returns the signer/checker; the first key signs, all check
// (a rotation). now may be nil (time.Now).
func NewButtons(now func() time.Time, keys ...[]byte) (*Buttons, error) {
	c, err := signed.New("b1", "crmslack/share-button", keys...)
	if err != nil {
		return nil, fmt.Errorf("share button key: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	return &Buttons{codec: c, now: now}, nil
}

// ShareButton is the "Share this record" button carrying g, which expires
// GrantTTL from now.
func (b *Buttons) ShareButton(g Grant) (Button, error) {
	g.Expires = b.now().Add(GrantTTL).Unix()
	v, err := b.codec.Seal(g)
	if err != nil {
		return Button{}, err
	}
	if len(v) > blockkit.MaxButtonValue {
		return Button{}, fmt.Errorf("share button value is %d bytes, over Slack's %d", len(v), blockkit.MaxButtonValue)
	}
	return Button{Text: "Share this record", ActionID: ShareActionID, Value: v}, nil
}

// Read checks value's signature and returns its grant, whoever clicked.
func (b *Buttons) Read(value string) (Grant, error) {
	var g Grant
	if err := b.codec.Open(value, &g); err != nil {
		return Grant{}, fmt.Errorf("%w: %w", ErrBadRef, err)
	}
	if g.Org == "" || g.Module == "" || g.ID == "" || g.Team == "" || g.User == "" {
		return Grant{}, fmt.Errorf("%w: org, module, id, team and user are required", ErrBadRef)
	}
	return g, nil
}

// Open checks a click on a Share button: the value is one this service's
// key signed, not expired, and clicked by the user, in the team and
// channel, it was issued to. It returns the record to share.
func (b *Buttons) Open(value, team, channel, user string) (Ref, error) {
	g, err := b.Read(value)
	if err != nil {
		return Ref{}, err
	}
	if b.now().Unix() > g.Expires {
		return Ref{}, ErrGrantExpired
	}
	if g.Team != team || g.User != user || g.Channel != channel {
		return Ref{}, ErrNotYours
	}
	return g.Ref, nil
}
