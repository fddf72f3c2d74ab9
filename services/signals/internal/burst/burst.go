// Package burst is storm control: the signals from one customer to one
// owner within a window become one group, one Slack message that lists them
// and is updated in place as more arrive. It decides, for each signal, what
// the group becomes and what must be sent; it does no I/O.
package burst

import (
	"slices"
	"time"
)

// DefaultWindow is how long after a group's first signal later ones join it.
const DefaultWindow = 2 * time.Minute

// MaxEntries bounds a group, so its message stays within Slack's limits;
// the signal after that starts a new message.
const MaxEntries = 20

// MaxSeen bounds how many event ids of a key's earlier groups a group
// remembers, so a signal delivered again after its group was replaced is
// still recognised.
const MaxSeen = 200

// Entry is one signal of a group.
type Entry struct {
	EventID   string    `json:"e"`
	SignalID  string    `json:"i,omitempty"`
	Channel   int32     `json:"c"`
	Kind      string    `json:"k"`
	At        time.Time `json:"t"`
	Title     string    `json:"ti,omitempty"`
	Summary   string    `json:"s,omitempty"`
	From      string    `json:"f,omitempty"`
	FromPhone string    `json:"p,omitempty"`
	URL       string    `json:"u,omitempty"`
}

// Person is the record owner.
type Person struct {
	ID    string `json:"id"`
	Name  string `json:"n,omitempty"`
	Email string `json:"em,omitempty"`
}

// Record is the customer's record (a lead, contact or account).
type Record struct {
	Module string `json:"m"`
	ID     string `json:"id"`
	Name   string `json:"n,omitempty"`
}

// Group is one message's worth of signals. It is stored (as JSON) between
// signals.
type Group struct {
	// PostKey is the idempotency key of the group's post: the group's id.
	PostKey string `json:"pk"`
	Org     string `json:"o"`
	Team    string `json:"tm"`
	// SlackUser is the owner's Slack user id in Team.
	SlackUser string `json:"su"`
	Owner     Person `json:"ow"`
	Record    Record `json:"r"`
	// Started is the first signal's time; the window runs from it.
	Started time.Time `json:"st"`
	Entries []Entry   `json:"en"`
	// Channel and TS locate the posted message once the egress reported it.
	Channel string `json:"ch,omitempty"`
	TS      string `json:"ts,omitempty"`
	// Shown is how many entries the message shows as last sent.
	Shown int `json:"sh,omitempty"`
	// Seen are the event ids of the earlier groups of the same customer
	// and owner, newest last, at most MaxSeen.
	Seen []string `json:"sn,omitempty"`
}

// Posted reports whether the group's message exists and can be updated.
func (g *Group) Posted() bool { return g.Channel != "" && g.TS != "" }

// Has reports whether the group holds the event or an earlier group of
// its key did.
func (g *Group) Has(eventID string) bool {
	return slices.ContainsFunc(g.Entries, func(e Entry) bool { return e.EventID == eventID }) ||
		slices.Contains(g.Seen, eventID)
}

// Holds reports whether the event is one of this group's own.
func (g *Group) Holds(eventID string) bool {
	return slices.ContainsFunc(g.Entries, func(e Entry) bool { return e.EventID == eventID })
}

// First is the group's first entry.
func (g *Group) First() Entry { return g.Entries[0] }

// Action is what a signal asks of the egress.
type Action int

const (
	// Post: the signal starts a group; post its message.
	Post Action = iota + 1
	// Update: the signal joined a posted group; update the message.
	Update
	// Wait: the signal joined a group whose post is not confirmed yet; the
	// post's outcome brings the message up to date.
	Wait
	// Duplicate: the group already holds the signal.
	Duplicate
)

func (a Action) String() string {
	switch a {
	case Post:
		return "post"
	case Update:
		return "update"
	case Wait:
		return "wait"
	case Duplicate:
		return "duplicate"
	}
	return "unknown"
}

// Target is who a new group's message goes to.
type Target struct {
	Org, Team, SlackUser string
	Owner                Person
	Record               Record
}

// Add decides what e does to the current group (nil when there is none):
// it joins a group of the same owner and team whose first signal is less
// than window away and which has room, or starts a new one. postKey names a
// new group's post. The returned group is what to store.
func Add(cur *Group, e Entry, to Target, window time.Duration, postKey func(first Entry) string) (Group, Action) {
	if cur != nil && cur.Has(e.EventID) {
		return *cur, Duplicate
	}
	if cur != nil && joins(cur, e, to, window) {
		next := *cur
		next.Entries = append(slices.Clip(cur.Entries), e)
		if next.Posted() {
			next.Shown = len(next.Entries)
			return next, Update
		}
		return next, Wait
	}
	var seen []string
	if cur != nil {
		seen = slices.Clone(cur.Seen)
		for _, old := range cur.Entries {
			seen = append(seen, old.EventID)
		}
		seen = seen[max(0, len(seen)-MaxSeen):]
	}
	return Group{
		PostKey: postKey(e), Org: to.Org, Team: to.Team, SlackUser: to.SlackUser,
		Owner: to.Owner, Record: to.Record, Started: e.At, Entries: []Entry{e}, Shown: 1, Seen: seen,
	}, Post
}

func joins(g *Group, e Entry, to Target, window time.Duration) bool {
	d := e.At.Sub(g.Started)
	return g.Team == to.Team && g.SlackUser == to.SlackUser &&
		len(g.Entries) < MaxEntries && d > -window && d < window
}

// Located records where the group's post landed. It returns the group to
// store and whether the message must be updated now: when signals joined
// while the post was on its way.
func Located(g Group, channel, ts string) (Group, bool) {
	g.Channel, g.TS = channel, ts
	if len(g.Entries) > g.Shown {
		g.Shown = len(g.Entries)
		return g, true
	}
	return g, false
}
