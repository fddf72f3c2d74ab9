package slackstandin

import (
	"crypto/rand"
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// state is the mutable Slack world: workspaces, channels and the messages in
// them. Server.mu guards it.
type state struct {
	teams    map[string]*team
	order    []string            // team ids in seed order
	channels map[string]*channel // every conversation, by id
	posted   map[string]*posted  // by channel+"/"+ts
	// history is each channel's messages, oldest first, for
	// conversations.history; the same *posted as in posted.
	history map[string][]*posted
}

type team struct {
	ws        Workspace
	users     map[string]*User
	userOrder []string
	convOrder []string          // conversation ids, seed order then opened order
	dms       map[string]string // sorted member ids → IM or MPIM id
}

// channel is any conversation: channel, private channel, IM or MPIM.
type channel struct {
	id, team, name string
	private        bool
	archived       bool
	im, mpim       bool
	imUser         string // the person in an IM
	members        []string
	topic, purpose string
	creator        string
	created        int64
}

// posted is a message as it stands now, for chat.update, response_url,
// conversations.history and chat.getPermalink.
type posted struct {
	team, channel, ts, threadTS string
	author, botID               string
	text                        string
	blocks, attachments         json.RawMessage
	// metadata is the message metadata ({event_type, event_payload}),
	// compacted; nil when the message has none.
	metadata json.RawMessage
	// fileID is set for the message that shares a file in a channel.
	fileID  string
	deleted bool
}

func newState(seed *Seed, appID string) *state {
	st := &state{teams: map[string]*team{}, channels: map[string]*channel{}, posted: map[string]*posted{}, history: map[string][]*posted{}}
	for _, ws := range seed.Workspaces {
		t := &team{ws: ws, users: map[string]*User{}, dms: map[string]string{}}
		addUser := func(u User) {
			t.users[u.ID] = &u
			t.userOrder = append(t.userOrder, u.ID)
		}
		for _, u := range ws.Users {
			addUser(u)
		}
		if t.users[ws.Bot.UserID] == nil {
			addUser(User{ID: ws.Bot.UserID, Name: ws.Bot.Name, RealName: ws.Bot.Name, IsBot: true, TZ: "America/Los_Angeles"})
		}
		for _, c := range ws.Channels {
			st.channels[c.ID] = &channel{
				id: c.ID, team: ws.ID, name: c.Name, private: c.IsPrivate, archived: c.IsArchived,
				members: slices.Clone(c.Members), topic: c.Topic, purpose: c.Purpose,
				creator: c.Creator, created: c.Created,
			}
			t.convOrder = append(t.convOrder, c.ID)
		}
		for _, m := range ws.Messages {
			st.addPosted(&posted{
				team: ws.ID, channel: m.Channel, ts: m.TS, threadTS: m.ThreadTS, author: m.User, text: m.Text,
			})
		}
		st.teams[ws.ID] = t
		st.order = append(st.order, ws.ID)
	}
	return st
}

// addPosted records a message in its channel, keeping the history sorted
// by ts (new messages have the newest ts, seed messages may not).
func (st *state) addPosted(p *posted) {
	st.posted[p.channel+"/"+p.ts] = p
	h := st.history[p.channel]
	i := len(h)
	for i > 0 && tsMicros(h[i-1].ts) > tsMicros(p.ts) {
		i--
	}
	st.history[p.channel] = slices.Insert(h, i, p)
}

// conversation finds a conversation of team t by id.
func (st *state) conversation(t *team, id string) *channel {
	if c := st.channels[id]; c != nil && c.team == t.ws.ID {
		return c
	}
	return nil
}

// conversationByName finds a channel by name, with or without '#'.
func (st *state) conversationByName(t *team, name string) *channel {
	name = strings.TrimPrefix(name, "#")
	for _, id := range t.convOrder {
		if c := st.channels[id]; c.name == name && !c.im && !c.mpim {
			return c
		}
	}
	return nil
}

func (c *channel) isMember(userID string) bool { return slices.Contains(c.members, userID) }

// hidden reports whether a conversation is invisible to userID: private
// conversations exist only for their members, as Slack answers
// channel_not_found for them.
func (c *channel) hidden(userID string) bool {
	return (c.private || c.im || c.mpim) && !c.isMember(userID)
}

// openDM returns the IM (one user) or MPIM (several) between the bot and
// users, creating it the first time; the id is stable per set of users.
func (st *state) openDM(t *team, users []string, now time.Time) (c *channel, existed bool) {
	set := slices.Clone(users)
	slices.Sort(set)
	key := strings.Join(set, ",")
	if id, ok := t.dms[key]; ok {
		return st.channels[id], true
	}
	members := append([]string{t.ws.Bot.UserID}, set...)
	c = &channel{team: t.ws.ID, members: members, private: true}
	if len(set) == 1 {
		c.id, c.im, c.imUser = newID("D"), true, set[0]
	} else {
		c.id, c.mpim = newID("G"), true
		names := make([]string, 0, len(members))
		for _, m := range members {
			names = append(names, t.users[m].Name)
		}
		c.name = "mpdm-" + strings.Join(names, "--") + "-1"
	}
	c.creator, c.created = t.ws.Bot.UserID, now.Unix()
	st.channels[c.id] = c
	t.dms[key] = c.id
	t.convOrder = append(t.convOrder, c.id)
	return c, false
}

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// newID returns a Slack-shaped id: prefix and ten uppercase letters/digits.
func newID(prefix string) string { return prefix + randomString(idAlphabet, 10) }

func randomString(alphabet string, n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// isUserID tells a user id (U…, W…) from a conversation id or name.
func isUserID(s string) bool {
	return len(s) > 1 && (s[0] == 'U' || s[0] == 'W') && s == strings.ToUpper(s)
}

// isConversationID tells a conversation id (C…, G…, D…) from a name.
func isConversationID(s string) bool {
	return len(s) > 1 && strings.ContainsRune("CGD", rune(s[0])) && s == strings.ToUpper(s)
}
