// Package matrix is the SalesSignals settings matrix: every communication
// channel and its signal types (the cells), each cell's documented default,
// and an org's choice of which cells send a Slack notification. It is plain
// Go, no I/O.
package matrix

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

// Channel is a communication channel: a row group of the matrix.
type Channel = crmv1.SignalChannel

// Channels, as crm.v1 names them.
const (
	Call          = crmv1.SignalChannel_SIGNAL_CHANNEL_CALL
	Chat          = crmv1.SignalChannel_SIGNAL_CHANNEL_CHAT
	Email         = crmv1.SignalChannel_SIGNAL_CHANNEL_EMAIL
	SupportTicket = crmv1.SignalChannel_SIGNAL_CHANNEL_SUPPORT_TICKET
	Social        = crmv1.SignalChannel_SIGNAL_CHANNEL_SOCIAL
	Website       = crmv1.SignalChannel_SIGNAL_CHANNEL_WEBSITE
	Survey        = crmv1.SignalChannel_SIGNAL_CHANNEL_SURVEY
	Campaign      = crmv1.SignalChannel_SIGNAL_CHANNEL_CAMPAIGN
)

// Key names one cell: a channel and one of its signal types.
type Key struct {
	Channel Channel
	Kind    string
}

func (k Key) String() string { return ChannelName(k.Channel) + "/" + k.Kind }

// Def is a cell of the catalog.
type Def struct {
	Key
	// Label is how the CRM's settings page shows it, e.g. "Missed".
	Label string
	// Default is whether Slack is ticked until an admin changes it.
	Default bool
	// Phrase names such a signal in a message, e.g. "Missed call".
	Phrase string
}

// The defaults tick what a rep should answer now: a customer who tried to
// reach them and did not (a missed call or chat), or who wrote and waits
// (an email received or replied to, a chat started, a ticket opened or
// escalated, a social message, a form submitted, a survey answered). They
// leave unticked what only reports activity (opens, clicks, visits,
// outgoing calls, ticket updates and closings, bounces, mentions).
var catalog = []Def{
	{Key{Call, "missed"}, "Missed", true, "Missed call"},
	{Key{Call, "incoming"}, "Incoming", false, "Incoming call"},
	{Key{Call, "outgoing"}, "Outgoing", false, "Outgoing call"},
	{Key{Chat, "started"}, "Started", true, "Chat started"},
	{Key{Chat, "missed"}, "Missed", true, "Missed chat"},
	{Key{Chat, "transcript"}, "Transcript", false, "Chat transcript"},
	{Key{Email, "received"}, "Received", true, "Email received"},
	{Key{Email, "opened"}, "Opened", false, "Email opened"},
	{Key{Email, "link_clicked"}, "Link clicked", false, "Email link clicked"},
	{Key{Email, "bounced"}, "Bounced", false, "Email bounced"},
	{Key{Email, "replied"}, "Replied", true, "Email reply"},
	{Key{SupportTicket, "created"}, "Created", true, "Ticket created"},
	{Key{SupportTicket, "updated"}, "Updated", false, "Ticket updated"},
	{Key{SupportTicket, "escalated"}, "Escalated", true, "Ticket escalated"},
	{Key{SupportTicket, "closed"}, "Closed", false, "Ticket closed"},
	{Key{Social, "mention"}, "Mention", false, "Social mention"},
	{Key{Social, "message"}, "Message", true, "Social message"},
	{Key{Website, "visit"}, "Visit", false, "Website visit"},
	{Key{Website, "form_submitted"}, "Form submitted", true, "Form submitted"},
	{Key{Survey, "response"}, "Response", true, "Survey response"},
	{Key{Campaign, "opened"}, "Opened", false, "Campaign opened"},
	{Key{Campaign, "link_clicked"}, "Link clicked", false, "Campaign link clicked"},
}

var byKey = func() map[Key]int {
	m := make(map[Key]int, len(catalog))
	for i, d := range catalog {
		m[d.Key] = i
	}
	return m
}()

// Catalog returns every cell in matrix order.
func Catalog() []Def { return slices.Clone(catalog) }

// Lookup returns a cell's definition.
func Lookup(k Key) (Def, bool) {
	i, ok := byKey[k]
	if !ok {
		return Def{}, false
	}
	return catalog[i], true
}

var channelNames = map[Channel]string{
	Call: "Call", Chat: "Chat", Email: "Email", SupportTicket: "Support ticket",
	Social: "Social", Website: "Website / portal", Survey: "Survey", Campaign: "Campaign",
}

// ChannelName is a channel as people read it, e.g. "Support ticket".
func ChannelName(c Channel) string {
	if n, ok := channelNames[c]; ok {
		return n
	}
	return strings.ToLower(strings.TrimPrefix(c.String(), "SIGNAL_CHANNEL_"))
}

// ErrUnknownCell is wrapped for a channel and kind the catalog lacks.
var ErrUnknownCell = errors.New("no such SalesSignals cell")

// Check returns the cell's definition or an error listing the channel's
// kinds.
func Check(k Key) (Def, error) {
	if d, ok := Lookup(k); ok {
		return d, nil
	}
	var kinds []string
	for _, d := range catalog {
		if d.Channel == k.Channel {
			kinds = append(kinds, d.Kind)
		}
	}
	if len(kinds) == 0 {
		return Def{}, fmt.Errorf("%w: channel %s is not a SalesSignals channel", ErrUnknownCell, k.Channel)
	}
	return Def{}, fmt.Errorf("%w: %s has no signal type %q (it has %s)", ErrUnknownCell, ChannelName(k.Channel), k.Kind, strings.Join(kinds, ", "))
}

// Matrix is an org's choice: the cells whose value differs from the
// default. The zero Matrix is the defaults. It is a value: methods return
// new matrices.
type Matrix struct {
	overrides map[Key]bool
}

// FromOverrides builds a matrix from stored cells; unknown cells (a type
// retired from the catalog) are dropped, values equal to the default are
// not kept.
func FromOverrides(cells map[Key]bool) Matrix {
	m := Matrix{}
	for k, v := range cells {
		if d, ok := Lookup(k); ok && d.Default != v {
			if m.overrides == nil {
				m.overrides = map[Key]bool{}
			}
			m.overrides[k] = v
		}
	}
	return m
}

// Enabled reports whether the cell sends a Slack notification; unknown
// cells never do.
func (m Matrix) Enabled(k Key) bool {
	d, ok := Lookup(k)
	if !ok {
		return false
	}
	if v, ok := m.overrides[k]; ok {
		return v
	}
	return d.Default
}

// Overrides returns the cells that differ from their default.
func (m Matrix) Overrides() map[Key]bool {
	out := make(map[Key]bool, len(m.overrides))
	for k, v := range m.overrides {
		out[k] = v
	}
	return out
}

// With returns m with the given cells set; every cell must exist.
func (m Matrix) With(cells map[Key]bool) (Matrix, error) {
	next := m.Overrides()
	for k, v := range cells {
		if _, err := Check(k); err != nil {
			return Matrix{}, err
		}
		next[k] = v
	}
	return FromOverrides(next), nil
}

// Exactly returns the matrix where the cells given as on are on and every
// other cell is off; every cell named must exist.
func Exactly(on map[Key]bool) (Matrix, error) {
	all := make(map[Key]bool, len(catalog))
	for _, d := range catalog {
		all[d.Key] = false
	}
	for k, v := range on {
		if _, err := Check(k); err != nil {
			return Matrix{}, err
		}
		all[k] = v
	}
	return FromOverrides(all), nil
}

// Cell is one cell as an answer shows it.
type Cell struct {
	Def
	Enabled bool
}

// Cells returns every cell in matrix order with its value.
func (m Matrix) Cells() []Cell {
	out := make([]Cell, len(catalog))
	for i, d := range catalog {
		out[i] = Cell{Def: d, Enabled: m.Enabled(d.Key)}
	}
	return out
}
