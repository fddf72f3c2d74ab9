package slackstandin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// The stand-in keeps its world in Config.StateFile, so that a local stack
// restarted on the same data folder finds the workspaces, tokens, channels,
// messages, files and response URLs it had, as it would with Slack itself:
// the registry's stored tokens keep working and no one has to reinstall.
// Rate-limit buckets, injected faults and statistics are not kept.

// saveEvery is how often a changed state is written while serving; Close
// writes it once more.
const saveEvery = time.Second

// stateVersion names the file's layout; another layout is refused rather
// than half-read.
const stateVersion = 1

type snapshot struct {
	Version   int            `json:"version"`
	Teams     []snapTeam     `json:"teams"`
	Channels  []snapChannel  `json:"channels"`
	Tokens    []snapToken    `json:"tokens"`
	Refreshes []snapRefresh  `json:"refreshes"`
	Uploads   []snapUpload   `json:"uploads"`
	Completed []string       `json:"completed"`
	Responses []snapResponse `json:"responses"`
	Messages  []Message      `json:"messages"`
	LastTS    int64          `json:"last_ts"`
}

type snapTeam struct {
	Workspace Workspace         `json:"workspace"`
	Users     []User            `json:"users"` // in listing order
	ConvOrder []string          `json:"conv_order"`
	DMs       map[string]string `json:"dms"`
}

type snapChannel struct {
	ID, Team, Name string
	Private        bool `json:",omitempty"`
	Archived       bool `json:",omitempty"`
	IM             bool `json:",omitempty"`
	MPIM           bool `json:",omitempty"`
	IMUser         string
	Members        []string
	Topic, Purpose string
	Creator        string
	Created        int64
	History        []snapPosted // oldest first
}

type snapPosted struct {
	TS, ThreadTS, Author, BotID, Text string
	Blocks, Attachments, Metadata     json.RawMessage `json:",omitempty"`
	FileID                            string          `json:",omitempty"`
	Deleted                           bool            `json:",omitempty"`
}

type snapToken struct {
	Value, Team, UserID, BotID string
	Bot                        bool
	Scopes                     []string
	Expires                    time.Time
	Revoked                    bool
}

type snapRefresh struct {
	Value, Team, UserID, Installer string
	Bot, Used                      bool
	Scopes                         []string
}

type snapUpload struct {
	ID, Team, Ticket, Name string
	Length                 int
	AltText, SnippetType   string
	Uploaded               bool
	Content                []byte
	File                   *File
	FileContent            []byte // File.Content, which File's JSON leaves out
}

type snapResponse struct {
	ID, Team, Channel, User, MessageTS string
	Created                            time.Time
	Uses                               int
}

func (s *Server) snapshotLocked() snapshot {
	snap := snapshot{Version: stateVersion, Completed: slices.Clone(s.completed), Messages: slices.Clone(s.messages), LastTS: s.lastTS}
	for _, id := range s.st.order {
		t := s.st.teams[id]
		st := snapTeam{Workspace: t.ws, ConvOrder: slices.Clone(t.convOrder), DMs: t.dms}
		for _, uid := range t.userOrder {
			st.Users = append(st.Users, *t.users[uid])
		}
		snap.Teams = append(snap.Teams, st)
		for _, cid := range t.convOrder {
			c := s.st.channels[cid]
			if c == nil {
				continue
			}
			sc := snapChannel{ID: c.id, Team: c.team, Name: c.name, Private: c.private, Archived: c.archived, IM: c.im, MPIM: c.mpim,
				IMUser: c.imUser, Members: c.members, Topic: c.topic, Purpose: c.purpose, Creator: c.creator, Created: c.created}
			for _, p := range s.st.history[c.id] {
				sc.History = append(sc.History, snapPosted{TS: p.ts, ThreadTS: p.threadTS, Author: p.author, BotID: p.botID, Text: p.text,
					Blocks: p.blocks, Attachments: p.attachments, Metadata: p.metadata, FileID: p.fileID, Deleted: p.deleted})
			}
			snap.Channels = append(snap.Channels, sc)
		}
	}
	for _, t := range s.tokens {
		snap.Tokens = append(snap.Tokens, snapToken{Value: t.value, Team: t.team, UserID: t.userID, BotID: t.botID, Bot: t.bot, Scopes: t.scopes, Expires: t.expires, Revoked: t.revoked})
	}
	for v, r := range s.refreshes {
		snap.Refreshes = append(snap.Refreshes, snapRefresh{Value: v, Team: r.team, UserID: r.userID, Installer: r.installer, Bot: r.bot, Used: r.used, Scopes: r.scopes})
	}
	for _, u := range s.uploads {
		su := snapUpload{ID: u.id, Team: u.team, Ticket: u.ticket, Name: u.name, Length: u.length, AltText: u.altText,
			SnippetType: u.snippetType, Uploaded: u.uploaded, Content: u.content, File: u.file}
		if u.file != nil {
			su.FileContent = u.file.Content
		}
		snap.Uploads = append(snap.Uploads, su)
	}
	for id, r := range s.responses {
		snap.Responses = append(snap.Responses, snapResponse{ID: id, Team: r.team, Channel: r.channel, User: r.user, MessageTS: r.messageTS, Created: r.created, Uses: r.uses})
	}
	return snap
}

func (s *Server) restoreLocked(snap snapshot) error {
	if snap.Version != stateVersion {
		return fmt.Errorf("state file version %d, want %d", snap.Version, stateVersion)
	}
	st := &state{teams: map[string]*team{}, channels: map[string]*channel{}, posted: map[string]*posted{}, history: map[string][]*posted{}}
	for _, sn := range snap.Teams {
		t := &team{ws: sn.Workspace, users: map[string]*User{}, convOrder: sn.ConvOrder, dms: sn.DMs}
		if t.dms == nil {
			t.dms = map[string]string{}
		}
		for _, u := range sn.Users {
			t.users[u.ID] = &u
			t.userOrder = append(t.userOrder, u.ID)
		}
		st.teams[sn.Workspace.ID] = t
		st.order = append(st.order, sn.Workspace.ID)
	}
	for _, c := range snap.Channels {
		st.channels[c.ID] = &channel{id: c.ID, team: c.Team, name: c.Name, private: c.Private, archived: c.Archived, im: c.IM, mpim: c.MPIM,
			imUser: c.IMUser, members: c.Members, topic: c.Topic, purpose: c.Purpose, creator: c.Creator, created: c.Created}
		for _, p := range c.History {
			pp := &posted{team: c.Team, channel: c.ID, ts: p.TS, threadTS: p.ThreadTS, author: p.Author, botID: p.BotID, text: p.Text,
				blocks: p.Blocks, attachments: p.Attachments, metadata: p.Metadata, fileID: p.FileID, deleted: p.Deleted}
			st.posted[c.ID+"/"+p.TS] = pp
			st.history[c.ID] = append(st.history[c.ID], pp)
		}
	}
	s.st = st
	for _, t := range snap.Tokens {
		s.tokens[t.Value] = &token{value: t.Value, team: t.Team, userID: t.UserID, botID: t.BotID, bot: t.Bot, scopes: t.Scopes, expires: t.Expires, revoked: t.Revoked}
	}
	for _, r := range snap.Refreshes {
		s.refreshes[r.Value] = &refreshToken{team: r.Team, userID: r.UserID, installer: r.Installer, bot: r.Bot, used: r.Used, scopes: r.Scopes}
	}
	for _, u := range snap.Uploads {
		up := &upload{id: u.ID, team: u.Team, ticket: u.Ticket, name: u.Name, length: u.Length, altText: u.AltText,
			snippetType: u.SnippetType, uploaded: u.Uploaded, content: u.Content, file: u.File}
		if up.file != nil {
			up.file.Content = u.FileContent
		}
		s.uploads[u.ID] = up
		if !up.uploaded && up.ticket != "" {
			s.tickets[up.ticket] = up
		}
	}
	s.completed = snap.Completed
	for _, r := range snap.Responses {
		s.responses[r.ID] = &responseURL{team: r.Team, channel: r.Channel, user: r.User, messageTS: r.MessageTS, created: r.Created, uses: r.Uses}
	}
	s.messages = snap.Messages
	s.lastTS = snap.LastTS
	return nil
}

// loadState reads Config.StateFile, if it exists, over the seeded state.
func (s *Server) loadState() error {
	raw, err := os.ReadFile(s.cfg.StateFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the stand-in's state: %w", err)
	}
	var snap snapshot
	if err := json.Unmarshal(raw, &snap); err != nil {
		return fmt.Errorf("reading the stand-in's state %s: %w", s.cfg.StateFile, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.restoreLocked(snap); err != nil {
		return fmt.Errorf("reading the stand-in's state %s: %w", s.cfg.StateFile, err)
	}
	return nil
}

// markDirty records that the state changed since the last save.
func (s *Server) markDirty() {
	s.mu.Lock()
	s.dirty++
	s.mu.Unlock()
}

// SaveState writes the state to Config.StateFile now (atomically: a crash
// mid-write leaves the previous file). Without a StateFile it does nothing.
func (s *Server) SaveState() error {
	if s.cfg.StateFile == "" {
		return nil
	}
	s.mu.Lock()
	snap, gen := s.snapshotLocked(), s.dirty
	raw, err := json.Marshal(snap)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("encoding the stand-in's state: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(s.cfg.StateFile), 0o700); err != nil {
		return fmt.Errorf("writing the stand-in's state: %w", err)
	}
	tmp := s.cfg.StateFile + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return fmt.Errorf("writing the stand-in's state: %w", err)
	}
	if err := os.Rename(tmp, s.cfg.StateFile); err != nil {
		return fmt.Errorf("writing the stand-in's state: %w", err)
	}
	s.mu.Lock()
	s.saved = gen
	s.mu.Unlock()
	return nil
}

// saveLoop writes a changed state every saveEvery until the server closes.
func (s *Server) saveLoop() {
	t := time.NewTicker(saveEvery)
	defer t.Stop()
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
			s.mu.Lock()
			changed := s.dirty != s.saved
			s.mu.Unlock()
			if changed {
				if err := s.SaveState(); err != nil {
					s.cfg.Logger.Error("slack stand-in state not saved", "err", err)
				}
			}
		}
	}
}

// persisting marks the state dirty after every request that may change it.
func (s *Server) persisting(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r)
		if r.Method != http.MethodGet || r.URL.Path == "/oauth/v2/authorize" {
			s.markDirty()
		}
	})
}

// trimLocked keeps at most Config.MaxMessages recorded messages, and as
// many messages per channel, dropping the oldest.
func (s *Server) trimLocked(channel string) {
	limit := s.cfg.MaxMessages
	if limit <= 0 {
		return
	}
	if extra := len(s.messages) - limit; extra > 0 {
		s.messages = slices.Delete(s.messages, 0, extra)
	}
	h := s.st.history[channel]
	if extra := len(h) - limit; extra > 0 {
		for _, p := range h[:extra] {
			delete(s.st.posted, p.channel+"/"+p.ts)
		}
		s.st.history[channel] = slices.Delete(h, 0, extra)
	}
}
