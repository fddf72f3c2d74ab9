package slackstandin

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

const (
	// maxUploadLength is the largest file Slack takes (1 GB).
	maxUploadLength = 1 << 30
	maxAltTxt       = 1000
	maxFileChannels = 100
)

// upload is a file on its way through the three-step upload: reserved by
// files.getUploadURLExternal, filled through its upload URL, shared by
// files.completeUploadExternal.
type upload struct {
	id, team, ticket, name string
	length                 int
	altText, snippetType   string
	uploaded               bool
	content                []byte
	file                   *File // set once completed
}

func (s *Server) filesGetUploadURLExternal(c *call) (obj, error) {
	name := c.args.get("filename")
	if name == "" {
		return nil, invalidArgs("missing required field: filename [json-pointer:/filename]")
	}
	lengthArg := c.args.get("length")
	if lengthArg == "" {
		return nil, invalidArgs("missing required field: length [json-pointer:/length]")
	}
	length, err := strconv.Atoi(lengthArg)
	switch {
	case err != nil || length < 0:
		return nil, invalidArgs("must be a non-negative integer [json-pointer:/length]")
	case length == 0:
		return nil, errCode("missing_argument")
	case length > maxUploadLength:
		return nil, errCode("file_upload_size_restricted")
	}
	alt := c.args.get("alt_txt")
	if utf8.RuneCountInString(alt) > maxAltTxt {
		return nil, errCode("alt_txt_too_large")
	}
	u := &upload{
		id: newID("F"), team: c.team.ws.ID, ticket: randomString(idAlphabet+"abcdefghijklmnopqrstuvwxyz", 32),
		name: name, length: length, altText: alt, snippetType: c.args.get("snippet_type"),
	}
	s.uploads[u.id] = u
	s.tickets[u.ticket] = u
	return obj{"upload_url": requestBaseURL(c.req) + "/upload/v1/" + u.ticket, "file_id": u.id}, nil
}

// requestBaseURL is the scheme and host the client reached us on, so the
// upload URL has the API URL's host, the only one slack-go sends a token to
// besides slack.com.
func requestBaseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// serveUpload takes the file bytes, raw or as a multipart form's file part,
// at POST /upload/v1/{ticket}. The size must be the length announced.
func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request) {
	if s.interfere(w, r, "upload") {
		return
	}
	s.mu.Lock()
	u := s.tickets[r.PathValue("ticket")]
	s.mu.Unlock()
	if u == nil {
		http.Error(w, "invalid_upload_url", http.StatusNotFound)
		return
	}
	body, err := readUploadBody(r, u.length)
	if err != nil {
		http.Error(w, "invalid_form_data", http.StatusBadRequest)
		return
	}
	if len(body) != u.length {
		http.Error(w, fmt.Sprintf("length_mismatch: expected %d bytes, got %d", u.length, len(body)), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.uploaded {
		http.Error(w, "already_uploaded", http.StatusConflict)
		return
	}
	u.content, u.uploaded = body, true
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = fmt.Fprintf(w, "OK - %d", len(body))
}

// readUploadBody reads at most length+1 bytes, enough to see an oversize file.
func readUploadBody(r *http.Request, length int) ([]byte, error) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "multipart/form-data" {
		return io.ReadAll(io.LimitReader(r.Body, int64(length)+1))
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, err
	}
	for {
		p, err := mr.NextPart()
		if err != nil {
			return nil, err // io.EOF: no file part
		}
		if p.FileName() != "" || p.FormName() == "file" {
			return io.ReadAll(io.LimitReader(p, int64(length)+1))
		}
	}
}

func (s *Server) filesCompleteUploadExternal(c *call) (obj, error) {
	raw := c.args.doc("files")
	if raw == nil {
		return nil, invalidArgs("missing required field: files [json-pointer:/files]")
	}
	var summaries []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	if err := json.Unmarshal(raw, &summaries); err != nil || len(summaries) == 0 {
		return nil, invalidArgs("must provide a non-empty array of {id, title} [json-pointer:/files]")
	}
	ups := make([]*upload, 0, len(summaries))
	for _, f := range summaries {
		u := s.uploads[f.ID]
		if u == nil || u.team != c.team.ws.ID || !u.uploaded || u.file != nil {
			return nil, errCode("file_not_found")
		}
		ups = append(ups, u)
	}

	targets := splitList(c.args.get("channels"))
	if id := c.args.get("channel_id"); id != "" && !slices.Contains(targets, id) {
		targets = append([]string{id}, targets...)
	}
	if len(targets) > maxFileChannels {
		return nil, errCode("channels_limit_exceeded")
	}
	threadTS := c.args.get("thread_ts")
	if threadTS != "" && len(targets) != 1 {
		return nil, invalidArgs("thread_ts needs exactly one channel [json-pointer:/thread_ts]")
	}
	channels := make([]string, 0, len(targets))
	for _, id := range targets {
		ch, err := s.target(c, id)
		if err != nil {
			return nil, err
		}
		if err := canPost(c, ch); err != nil {
			return nil, err
		}
		channels = append(channels, ch.id)
	}
	comment := c.args.get("initial_comment")
	var blocks []byte
	if comment == "" {
		blocks = c.args.doc("blocks") // Slack ignores blocks when there is a comment
	}
	ct, err := readContent(comment, blocks, nil)
	if err != nil {
		return nil, err
	}

	out := make([]obj, 0, len(ups))
	for i, u := range ups {
		title := summaries[i].Title
		if title == "" {
			title = u.name
		}
		u.file = &File{
			ID: u.id, Team: u.team, User: c.tok.userID, Name: u.name, Title: title, Length: u.length, Content: u.content,
			Channels: channels, InitialComment: ct.text, ThreadTS: threadTS, Blocks: ct.blocks,
			AltText: u.altText, SnippetType: u.snippetType, Time: s.now(),
		}
		// Sharing a file posts a message carrying it in each channel.
		for _, chID := range channels {
			p := &posted{
				team: u.team, channel: chID, ts: s.nextTS(), threadTS: threadTS, author: c.tok.userID,
				text: ct.text, blocks: ct.blocks, fileID: u.id,
			}
			s.st.addPosted(p)
			u.file.Shares = append(u.file.Shares, FileShare{Channel: chID, TS: p.ts})
		}
		s.completed = append(s.completed, u.id)
		out = append(out, obj{"id": u.id, "title": title})
	}
	s.notifyLocked()
	return obj{"files": out}, nil
}

// filesInfo answers a completed file of the caller's team.
func (s *Server) filesInfo(c *call) (obj, error) {
	id := c.args.get("file")
	if id == "" {
		return nil, invalidArgs("missing required field: file [json-pointer:/file]")
	}
	u := s.uploads[id]
	if u == nil || u.team != c.team.ws.ID || u.file == nil {
		return nil, errCode("file_not_found")
	}
	return obj{
		"file": s.fileObj(c.team, u.file), "comments": []obj{},
		"paging":            obj{"count": 100, "total": 0, "page": 1, "pages": 0},
		"response_metadata": obj{"next_cursor": ""},
	}, nil
}

// fileObj is a file object as files.info and message "files" show it: the
// conversations it is shared in (channels, groups, ims) and, per
// conversation, the ts of the message that shares it (shares).
func (s *Server) fileObj(t *team, f *File) obj {
	ext := strings.TrimPrefix(strings.ToLower(path.Ext(f.Name)), ".")
	mimetype := mime.TypeByExtension("." + ext)
	if mimetype == "" {
		mimetype = "application/octet-stream"
	}
	mimetype, _, _ = strings.Cut(mimetype, ";")
	filetype := ext
	if filetype == "" {
		filetype = "binary"
	}
	channels, groups, ims := []string{}, []string{}, []string{}
	public, private := obj{}, obj{}
	for _, sh := range f.Shares {
		ch := s.st.channels[sh.Channel]
		info := []obj{{
			"ts": sh.TS, "channel_name": ch.name, "team_id": f.Team,
			"reply_users": []string{}, "reply_users_count": 0, "reply_count": 0,
		}}
		switch {
		case ch.im:
			ims = append(ims, ch.id)
			private[ch.id] = info
		case ch.private || ch.mpim:
			groups = append(groups, ch.id)
			private[ch.id] = info
		default:
			channels = append(channels, ch.id)
			public[ch.id] = info
		}
	}
	shares := obj{}
	if len(public) > 0 {
		shares["public"] = public
	}
	if len(private) > 0 {
		shares["private"] = private
	}
	base := s.baseURL
	o := obj{
		"id": f.ID, "created": f.Time.Unix(), "timestamp": f.Time.Unix(),
		"name": f.Name, "title": f.Title, "mimetype": mimetype, "filetype": filetype,
		"pretty_type": strings.ToUpper(filetype), "user": f.User, "user_team": f.Team,
		"editable": false, "size": f.Length, "mode": "hosted", "is_external": false, "external_type": "",
		"is_public": len(channels) > 0, "public_url_shared": false, "display_as_bot": false, "username": "",
		"url_private":          base + "/_standin/files/" + f.ID + "/content",
		"url_private_download": base + "/_standin/files/" + f.ID + "/content",
		"permalink":            "https://" + t.ws.Domain + ".slack.com/files/" + f.User + "/" + f.ID + "/" + f.Name,
		"permalink_public":     "https://slack-files.com/" + f.Team + "-" + f.ID,
		"channels":             channels, "groups": groups, "ims": ims, "shares": shares,
		"comments_count": 0, "has_rich_preview": false, "file_access": "visible",
	}
	if f.AltText != "" {
		o["alt_txt"] = f.AltText
	}
	return o
}
