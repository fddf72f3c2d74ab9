package slackstandin

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
)

// The read API shows the stand-in's world as a Slack client would: the
// workspaces, what one person sees of them, the messages as they stand now
// and the ephemeral ones meant for that person, and the uploaded files. It
// is for viewers such as deploy/local's sandbox pane; it only reads, and it
// adds nothing to the path a post takes (a viewer waiting for a change is
// one of the waiters recordLocked already counts).

// WorkspaceView is a workspace and its people.
type WorkspaceView struct {
	ID, Name, Domain string
	// BotUserID is the app's bot user in the workspace.
	BotUserID string
	// Users are the people and bots, in listing order.
	Users []User
}

// ConversationView is a conversation as one person sees it in the sidebar.
type ConversationView struct {
	ID string
	// Name is the channel's name; for a DM, the other person's name.
	Name      string
	Private   bool
	Archived  bool
	IM, MPIM  bool
	Members   []string
	BotMember bool
}

// PostedView is a message in a conversation as it stands now (after
// chat.update and response_url replacements; deleted ones are left out).
type PostedView struct {
	TS, ThreadTS string
	// Author is the user id that posted it.
	Author      string
	Text        string
	Blocks      json.RawMessage
	Attachments json.RawMessage
	// FileID is set on the message that shares an uploaded file.
	FileID string
}

// Workspaces lists the workspaces in seed order.
func (s *Server) Workspaces() []WorkspaceView {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]WorkspaceView, 0, len(s.st.order))
	for _, id := range s.st.order {
		t := s.st.teams[id]
		w := WorkspaceView{ID: t.ws.ID, Name: t.ws.Name, Domain: t.ws.Domain, BotUserID: t.ws.Bot.UserID}
		for _, uid := range t.userOrder {
			w.Users = append(w.Users, *t.users[uid])
		}
		out = append(out, w)
	}
	return out
}

// ConversationsOf lists the conversations user sees in team: the public
// channels, the private ones they are a member of, and their DMs with the
// app, in the workspace's order.
func (s *Server) ConversationsOf(teamID, userID string) ([]ConversationView, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.st.teams[teamID]
	if t == nil {
		return nil, fmt.Errorf("no workspace %q", teamID)
	}
	if t.users[userID] == nil {
		return nil, fmt.Errorf("no user %q in workspace %s", userID, teamID)
	}
	var out []ConversationView
	for _, id := range t.convOrder {
		c := s.st.channels[id]
		if c == nil || c.hidden(userID) {
			continue
		}
		v := ConversationView{
			ID: c.id, Name: c.name, Private: c.private, Archived: c.archived, IM: c.im, MPIM: c.mpim,
			Members: slices.Clone(c.members), BotMember: c.isMember(t.ws.Bot.UserID),
		}
		if c.im {
			// A DM of the app with userID: the user sees it as the app's.
			v.Name = t.ws.Bot.Name
		}
		out = append(out, v)
	}
	return out, nil
}

// History is a conversation's messages as they stand now, oldest first.
func (s *Server) History(teamID, channelID string) ([]PostedView, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.st.channels[channelID]
	if c == nil || c.team != teamID {
		return nil, fmt.Errorf("no conversation %q in workspace %s", channelID, teamID)
	}
	h := s.st.history[channelID]
	out := make([]PostedView, 0, len(h))
	for _, p := range h {
		if p.deleted {
			continue
		}
		out = append(out, PostedView{
			TS: p.ts, ThreadTS: p.threadTS, Author: p.author, Text: p.text,
			Blocks: p.blocks, Attachments: p.attachments, FileID: p.fileID,
		})
	}
	return out, nil
}

// EphemeralsFor is what only userID saw in a conversation, oldest first:
// chat.postEphemeral messages and the answers posted to response URLs
// that did not go in the channel (replacements and deletions included, in
// order, for the viewer to apply).
func (s *Server) EphemeralsFor(teamID, channelID, userID string) []Message {
	all := s.Messages(MessageFilter{Team: teamID, Channel: channelID, User: userID})
	out := all[:0]
	for _, m := range all {
		switch {
		case m.Kind == KindEphemeral:
		case m.Kind == KindResponseURL && m.ResponseType != "in_channel" && m.TS != "" && !m.ReplaceOriginal && !m.DeleteOriginal:
		case m.Kind == KindResponseURL && (m.ReplaceOriginal || m.DeleteOriginal) && !s.isPosted(m.Channel, m.TS):
			// Replacing or deleting an ephemeral answer, not a channel message.
		default:
			continue
		}
		out = append(out, m)
	}
	return out
}

func (s *Server) isPosted(channelID, ts string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.st.posted[channelID+"/"+ts]
	return ok
}

// File returns a completed upload with its content.
func (s *Server) File(id string) (File, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.uploads[id]
	if u == nil || u.file == nil {
		return File{}, false
	}
	f := *u.file
	f.Channels, f.Content, f.Shares = slices.Clone(f.Channels), slices.Clone(u.content), slices.Clone(f.Shares)
	return f, true
}

// ChangeCursor names the stand-in's state as far as a viewer can tell: it
// differs after any message is recorded or file completed.
func (s *Server) ChangeCursor() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cursorLocked()
}

func (s *Server) cursorLocked() string {
	var last int64
	if n := len(s.messages); n > 0 {
		last = s.messages[n-1].Time.UnixNano()
	}
	return strconv.FormatInt(s.lastTS, 36) + "." + strconv.Itoa(len(s.messages)) + "." +
		strconv.Itoa(len(s.completed)) + "." + strconv.FormatInt(last, 36)
}

// WaitForChange returns the cursor as soon as it differs from cursor (at
// once if it already does), or ctx's error. Nothing is missed between two
// calls: the cursor passed says what the caller has seen.
func (s *Server) WaitForChange(ctx context.Context, cursor string) (string, error) {
	for {
		s.mu.Lock()
		if cur := s.cursorLocked(); cur != cursor {
			s.mu.Unlock()
			return cur, nil
		}
		w := &messageWaiter{want: len(s.messages) + 1, have: len(s.messages), done: make(chan struct{})}
		s.waiters[w] = struct{}{}
		files := s.changed
		s.mu.Unlock()
		select {
		case <-w.done:
		case <-files:
		case <-ctx.Done():
		}
		s.mu.Lock()
		delete(s.waiters, w)
		s.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return cursor, err
		}
	}
}
