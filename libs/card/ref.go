package card

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/crmslack/crmslack/libs/blockkit"
)

// ShareActionID is the action_id of the "Share this record" button; the
// gateway routes block_actions with it to sharing.
const ShareActionID = "card_share"

// OpenActionID is the action_id of the "Open in CRM" link button. Slack
// still sends a block_actions payload for link buttons, which must be acked.
const OpenActionID = "card_open"

// ErrBadRef is returned for a button value that is not a record reference.
var ErrBadRef = errors.New("card: invalid record reference")

// Ref names a record across orgs; it travels in a button's value, so it is
// kept short (compact JSON with one-letter keys).
type Ref struct {
	Org    string `json:"o"`
	Module string `json:"m"`
	ID     string `json:"i"`
}

// Encode returns the compact JSON a button value carries.
func (r Ref) Encode() string {
	b, _ := json.Marshal(r) // a struct of strings always marshals
	return string(b)
}

// ParseRef reads a value written by [Ref.Encode]. The value comes back from
// Slack in a block_actions payload, so it is untrusted.
func ParseRef(value string) (Ref, error) {
	if len(value) > blockkit.MaxButtonValue {
		return Ref{}, fmt.Errorf("%w: %d bytes", ErrBadRef, len(value))
	}
	var r Ref
	if err := json.Unmarshal([]byte(value), &r); err != nil {
		return Ref{}, fmt.Errorf("%w: %w", ErrBadRef, err)
	}
	if r.Org == "" || r.Module == "" || r.ID == "" {
		return Ref{}, fmt.Errorf("%w: org, module and id are required", ErrBadRef)
	}
	return r, nil
}

// ShareButton is the "Share this record" button for the record r.
func ShareButton(r Ref) Button {
	return Button{Text: "Share this record", ActionID: ShareActionID, Value: r.Encode()}
}
