package slackstandin

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"
)

// MessageKind says how a recorded message reached Slack.
type MessageKind string

// Kinds of recorded messages.
const (
	KindMessage     MessageKind = "message"      // chat.postMessage
	KindEphemeral   MessageKind = "ephemeral"    // chat.postEphemeral
	KindUpdate      MessageKind = "update"       // chat.update
	KindResponseURL MessageKind = "response_url" // a POST to a response_url
)

// Message is a message the stand-in accepted.
type Message struct {
	Kind    MessageKind `json:"kind"`
	Team    string      `json:"team"`
	Channel string      `json:"channel"`
	// User is the person the message targets: the recipient of an
	// ephemeral message, the other side of a DM, the owner of a
	// response_url.
	User string `json:"user,omitempty"`
	// Author is the user id that posted it (the app's bot user).
	Author      string          `json:"author"`
	TS          string          `json:"ts"`
	ThreadTS    string          `json:"thread_ts,omitempty"`
	Text        string          `json:"text"`
	Blocks      json.RawMessage `json:"blocks,omitempty"`
	Attachments json.RawMessage `json:"attachments,omitempty"`
	// Metadata is the message metadata ({event_type, event_payload}) a
	// chat.postMessage carried, compacted.
	Metadata json.RawMessage `json:"metadata,omitempty"`
	// ResponseType, ReplaceOriginal and DeleteOriginal are set for
	// KindResponseURL.
	ResponseType    string    `json:"response_type,omitempty"`
	ReplaceOriginal bool      `json:"replace_original,omitempty"`
	DeleteOriginal  bool      `json:"delete_original,omitempty"`
	Time            time.Time `json:"time"`
}

// MessageFilter selects recorded messages; empty fields match anything.
type MessageFilter struct {
	Team     string
	Channel  string
	User     string
	Kind     MessageKind
	ThreadTS string
}

func (f MessageFilter) match(m Message) bool {
	return (f.Team == "" || f.Team == m.Team) &&
		(f.Channel == "" || f.Channel == m.Channel) &&
		(f.User == "" || f.User == m.User) &&
		(f.Kind == "" || f.Kind == m.Kind) &&
		(f.ThreadTS == "" || f.ThreadTS == m.ThreadTS)
}

// File is a file uploaded and completed through the v2 upload flow.
type File struct {
	ID   string `json:"id"`
	Team string `json:"team"`
	// User is who uploaded it (the bot user for a bot token).
	User           string          `json:"user"`
	Name           string          `json:"name"`
	Title          string          `json:"title"`
	Length         int             `json:"length"`
	Content        []byte          `json:"-"`
	Channels       []string        `json:"channels"`
	InitialComment string          `json:"initial_comment,omitempty"`
	ThreadTS       string          `json:"thread_ts,omitempty"`
	Blocks         json.RawMessage `json:"blocks,omitempty"`
	AltText        string          `json:"alt_txt,omitempty"`
	SnippetType    string          `json:"snippet_type,omitempty"`
	// Shares are the messages that share the file, one per channel.
	Shares []FileShare `json:"shares,omitempty"`
	Time   time.Time   `json:"time"`
}

// FileShare is the message sharing a file in a channel.
type FileShare struct {
	Channel string `json:"channel"`
	TS      string `json:"ts"`
}

// Stats counts what the stand-in refused, so a test can prove a client
// honoured Slack's limits.
type Stats struct {
	// Calls counts Web API calls per method that got past fault injection.
	Calls map[string]int `json:"calls"`
	// RateLimited counts 429 answers per method.
	RateLimited map[string]int `json:"rate_limited"`
	// RateLimitedChannels counts chat.postMessage 429s per channel id.
	RateLimitedChannels map[string]int `json:"rate_limited_channels"`
	// Injected counts injected failures per method.
	Injected map[string]int `json:"injected"`
}

func newStats() Stats {
	return Stats{Calls: map[string]int{}, RateLimited: map[string]int{}, RateLimitedChannels: map[string]int{}, Injected: map[string]int{}}
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{
		Calls:               maps.Clone(s.stats.Calls),
		RateLimited:         maps.Clone(s.stats.RateLimited),
		RateLimitedChannels: maps.Clone(s.stats.RateLimitedChannels),
		Injected:            maps.Clone(s.stats.Injected),
	}
}

// Messages returns the recorded messages matching f, oldest first.
func (s *Server) Messages(f MessageFilter) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.messagesLocked(f)
}

func (s *Server) messagesLocked(f MessageFilter) []Message {
	var out []Message
	for _, m := range s.messages {
		if f.match(m) {
			out = append(out, m)
		}
	}
	return out
}

// WaitForMessages waits until at least n recorded messages match f and
// returns them, or returns what it has with an error when ctx ends. It
// copies the messages once, when it returns.
func (s *Server) WaitForMessages(ctx context.Context, n int, f MessageFilter) ([]Message, error) {
	_, err := s.WaitForCount(ctx, n, f)
	return s.Messages(f), err
}

// WaitForCount waits until at least n recorded messages match f and returns
// how many do, or the count with an error when ctx ends. A waiter is counted
// up by each new record (O(1) per message), and woken only when it is
// satisfied, so waiting does not slow the posts it waits for.
func (s *Server) WaitForCount(ctx context.Context, n int, f MessageFilter) (int, error) {
	s.mu.Lock()
	have := 0
	for _, m := range s.messages {
		if f.match(m) {
			have++
		}
	}
	if have >= n {
		s.mu.Unlock()
		return have, nil
	}
	w := &messageWaiter{filter: f, want: n, have: have, done: make(chan struct{})}
	s.waiters[w] = struct{}{}
	s.mu.Unlock()
	select {
	case <-w.done:
		return n, nil
	case <-ctx.Done():
		s.mu.Lock()
		delete(s.waiters, w)
		have := w.have
		s.mu.Unlock()
		return have, fmt.Errorf("waiting for %d messages matching %+v, have %d: %w", n, f, have, ctx.Err())
	}
}

// messageWaiter is a WaitForCount in progress, counted under Server.mu.
type messageWaiter struct {
	filter     MessageFilter
	want, have int
	done       chan struct{}
}

// Files returns the completed uploads, oldest first.
func (s *Server) Files() []File {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.filesLocked()
}

func (s *Server) filesLocked() []File {
	out := make([]File, 0, len(s.completed))
	for _, id := range s.completed {
		f := *s.uploads[id].file
		f.Channels, f.Content, f.Shares = slices.Clone(f.Channels), slices.Clone(f.Content), slices.Clone(f.Shares)
		out = append(out, f)
	}
	return out
}

// WaitForFiles waits until at least n uploads are completed.
func (s *Server) WaitForFiles(ctx context.Context, n int) ([]File, error) {
	for {
		s.mu.Lock()
		got, changed := s.filesLocked(), s.changed
		s.mu.Unlock()
		if len(got) >= n {
			return got, nil
		}
		select {
		case <-ctx.Done():
			return got, fmt.Errorf("waiting for %d files, have %d: %w", n, len(got), ctx.Err())
		case <-changed:
		}
	}
}

// notifyLocked wakes the file waiters after an upload was completed.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) recordLocked(m Message) {
	m.Time = s.now()
	if len(s.messages) == cap(s.messages) {
		// Double: append grows a long slice by a quarter at a time, which
		// allocated the record about five times over while it grew.
		s.messages = slices.Grow(s.messages, max(len(s.messages), 256))
	}
	s.messages = append(s.messages, m)
	for w := range s.waiters {
		if w.filter.match(m) {
			if w.have++; w.have >= w.want {
				close(w.done)
				delete(s.waiters, w)
			}
		}
	}
	s.trimLocked(m.Channel)
}

// nextTS hands out message timestamps: "seconds.microseconds" from the
// clock, strictly increasing so every message has a unique ts.
func (s *Server) nextTS() string {
	us := s.now().UnixMicro()
	if us <= s.lastTS {
		us = s.lastTS + 1
	}
	s.lastTS = us
	return fmt.Sprintf("%d.%06d", us/1e6, us%1e6)
}

// serveRecordedMessages: GET /_standin/messages?team=&channel=&user=&kind=&thread_ts=
func (s *Server) serveRecordedMessages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	msgs := s.Messages(MessageFilter{
		Team: q.Get("team"), Channel: q.Get("channel"), User: q.Get("user"),
		Kind: MessageKind(q.Get("kind")), ThreadTS: q.Get("thread_ts"),
	})
	writeJSON(w, http.StatusOK, obj{"ok": true, "messages": nonNil(msgs)})
}

// serveRecordedFiles: GET /_standin/files
func (s *Server) serveRecordedFiles(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, obj{"ok": true, "files": nonNil(s.Files())})
}

// serveFileContent: GET /_standin/files/{id}/content returns the uploaded bytes.
func (s *Server) serveFileContent(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	u := s.uploads[r.PathValue("id")]
	var content []byte
	if u != nil && u.uploaded {
		content = u.content
	}
	s.mu.Unlock()
	if content == nil {
		http.Error(w, "file_not_found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(content)
}

// serveStats: GET /_standin/stats
func (s *Server) serveStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Stats())
}

// serveReset: POST /_standin/reset
func (s *Server) serveReset(w http.ResponseWriter, _ *http.Request) {
	s.Reset()
	writeJSON(w, http.StatusOK, obj{"ok": true})
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}
