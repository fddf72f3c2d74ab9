package sandbox

import (
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/crmslack/crmslack/deploy/local/demo"
	"github.com/crmslack/crmslack/libs/slackstandin"
)

// immediateAnswer is the app's HTTP answer to a slash command: Slack shows
// it to the person who typed the command only.
type immediateAnswer struct {
	team, channel, user string
	at                  time.Time
	text                string
	blocks              json.RawMessage
	responseType        string
}

// messageView is a message as the page shows it.
type messageView struct {
	Key       string
	Author    string
	IsBot     bool
	At        time.Time
	Ephemeral bool
	Text      template.HTML
	Blocks    []blockView
	// MessageTS is the channel message's ts, for clicks ("" when ephemeral).
	MessageTS string
	FileURL   string
	FileName  string
	FileAlt   string
}

type conversationLink struct {
	ID, Label string
	Private   bool
	Selected  bool
	BotMember bool
}

type option struct {
	Value, Label string
	Selected     bool
}

type pageView struct {
	Team, TeamName string
	Workspaces     []option
	Users          []option
	User, UserName string
	CRMUser        string
	Channels       []conversationLink
	DMs            []conversationLink
	Channel        string
	ChannelLabel   string
	Messages       []messageView
	Flash          string
	FlashError     bool
	ConsoleURL     string
	Org            string
	Deals          []option
	Contacts       []option
	Records        []option
	DealWonRule    string
	ReminderLead   string
}

// page gathers what the page shows of team for user in channel.
func (s *Server) page(r *http.Request) (*pageView, error) {
	teamID := r.PathValue("team")
	var ws *slackstandin.WorkspaceView
	all := s.cfg.Standin.Workspaces()
	p := &pageView{Team: teamID, ConsoleURL: s.cfg.ConsoleURL, Org: s.cfg.Org, DealWonRule: DealWonRule, ReminderLead: s.cfg.ReminderLead.String()}
	for i := range all {
		w := &all[i]
		p.Workspaces = append(p.Workspaces, option{Value: w.ID, Label: w.Name, Selected: w.ID == teamID})
		if w.ID == teamID {
			ws = w
		}
	}
	if ws == nil {
		return nil, fmt.Errorf("no workspace %q in the stand-in", teamID)
	}
	p.TeamName = ws.Name
	// A person or a conversation not in this workspace (the workspace was
	// just changed) falls back to the first one.
	user := r.FormValue("as")
	known := false
	for _, u := range ws.Users {
		known = known || (u.ID == user && !u.IsBot && !u.Deleted)
	}
	if !known {
		user = ""
	}
	for _, u := range ws.Users {
		if u.IsBot || u.Deleted {
			continue
		}
		if user == "" {
			user = u.ID
		}
		p.Users = append(p.Users, option{Value: u.ID, Label: u.RealName + " (" + u.Email + ")", Selected: u.ID == user})
		if u.ID == user {
			p.UserName = u.Name
			if cu, ok := demo.UserByEmail(u.Email); ok {
				p.CRMUser = cu.FullName
			}
		}
	}
	if p.UserName == "" {
		return nil, fmt.Errorf("workspace %s has no person to show", ws.ID)
	}
	p.User = user
	convs, err := s.cfg.Standin.ConversationsOf(ws.ID, user)
	if err != nil {
		return nil, err
	}
	channel := r.PathValue("channel")
	if channel == "" {
		channel = r.FormValue("c")
		if !slices.ContainsFunc(convs, func(c slackstandin.ConversationView) bool { return c.ID == channel }) {
			channel = ""
		}
	}
	for _, c := range convs {
		if channel == "" && !c.IM && !c.Archived && c.BotMember {
			channel = c.ID
		}
		l := conversationLink{ID: c.ID, Label: c.Name, Private: c.Private, Selected: c.ID == channel, BotMember: c.BotMember}
		if c.IM || c.MPIM {
			p.DMs = append(p.DMs, l)
		} else if !c.Archived {
			p.Channels = append(p.Channels, l)
		}
		if c.ID == channel {
			p.ChannelLabel = c.Name
			if !c.IM && !c.MPIM {
				p.ChannelLabel = "#" + c.Name
			}
		}
	}
	if p.ChannelLabel == "" {
		return nil, fmt.Errorf("person %s sees no conversation %q in %s", user, channel, ws.ID)
	}
	p.Channel = channel
	p.Messages, err = s.messages(ws, channel, user)
	if err != nil {
		return nil, err
	}
	for i, r := range demo.Records("Deals") {
		if i == 12 {
			break
		}
		p.Deals = append(p.Deals, option{Value: r.GetId(), Label: r.GetFields()["Deal_Name"].GetText()})
	}
	for i, r := range demo.Records("Contacts") {
		if i == 12 {
			break
		}
		p.Contacts = append(p.Contacts, option{Value: r.GetId(), Label: r.GetFields()["Full_Name"].GetText() + " (owner " + r.GetOwner().GetName() + ")"})
	}
	for _, module := range demo.Modules {
		display := demo.Schemas()[module].GetDisplayField()
		for i, r := range demo.Records(module) {
			if i == 5 {
				break
			}
			p.Records = append(p.Records, option{Value: module + "/" + r.GetId(), Label: module + ": " + r.GetFields()[display].GetText()})
		}
	}
	return p, nil
}

// messages is the conversation as user sees it: the channel's messages as
// they stand, with what only user saw (the slash commands' answers and
// ephemeral posts) in time order.
func (s *Server) messages(ws *slackstandin.WorkspaceView, channel, user string) ([]messageView, error) {
	names := map[string]string{}
	bots := map[string]bool{ws.BotUserID: true}
	for _, u := range ws.Users {
		names[u.ID] = firstNonEmpty(u.RealName, u.Name)
		if u.IsBot {
			bots[u.ID] = true
		}
	}
	if convs, err := s.cfg.Standin.ConversationsOf(ws.ID, user); err == nil {
		for _, c := range convs {
			names[c.ID] = c.Name
		}
	}
	rd := renderer{names: func(id string) string { return firstNonEmpty(names[id], id) }}
	hist, err := s.cfg.Standin.History(ws.ID, channel)
	if err != nil {
		return nil, err
	}
	var out []messageView
	for _, p := range hist {
		v := messageView{Key: p.TS, Author: rd.names(p.Author), IsBot: bots[p.Author], At: tsTime(p.TS), MessageTS: p.TS,
			Text: mrkdwn(p.Text, rd.names), Blocks: rd.blocks(p.Blocks)}
		if p.FileID != "" {
			if f, ok := s.cfg.Standin.File(p.FileID); ok {
				v.FileURL, v.FileName, v.FileAlt = "/files/"+f.ID, firstNonEmpty(f.Title, f.Name), firstNonEmpty(f.AltText, f.Title, f.Name)
			}
		}
		out = append(out, v)
	}

	// Ephemerals: the immediate answers kept here, and the stand-in's
	// records; a replacement takes the place of the latest before it.
	type eph struct {
		at           time.Time
		text         string
		blocks       json.RawMessage
		replace, del bool
		inChannel    bool
	}
	var ephs []eph
	s.mu.Lock()
	for _, a := range s.immediate {
		// An in_channel answer is the channel's: everyone sees it.
		if a.team == ws.ID && a.channel == channel && (a.user == user || a.responseType == "in_channel") {
			ephs = append(ephs, eph{at: a.at, text: a.text, blocks: a.blocks, inChannel: a.responseType == "in_channel"})
		}
	}
	s.mu.Unlock()
	for _, m := range s.cfg.Standin.EphemeralsFor(ws.ID, channel, user) {
		ephs = append(ephs, eph{at: m.Time, text: m.Text, blocks: m.Blocks, replace: m.ReplaceOriginal, del: m.DeleteOriginal})
	}
	slices.SortStableFunc(ephs, func(a, b eph) int { return a.at.Compare(b.at) })
	var shown []eph
	for _, e := range ephs {
		switch {
		case (e.replace || e.del) && len(shown) > 0:
			shown = shown[:len(shown)-1]
			if e.replace {
				shown = append(shown, e)
			}
		case e.replace || e.del:
		default:
			shown = append(shown, e)
		}
	}
	for i, e := range shown {
		out = append(out, messageView{Key: "eph-" + strconv.Itoa(i), Author: rd.names(ws.BotUserID), IsBot: true, At: e.at,
			Ephemeral: !e.inChannel, Text: mrkdwn(e.text, rd.names), Blocks: rd.blocks(e.blocks)})
	}
	slices.SortStableFunc(out, func(a, b messageView) int { return a.At.Compare(b.At) })
	return out, nil
}

// tsTime reads a Slack ts ("seconds.micros").
func tsTime(ts string) time.Time {
	sec, frac, _ := strings.Cut(ts, ".")
	s, _ := strconv.ParseInt(sec, 10, 64)
	us, _ := strconv.ParseInt(frac, 10, 64)
	return time.Unix(s, us*1000)
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
