package slackstandin

import (
	"encoding/base64"
	"math"
	"strconv"
	"strings"
)

// historyScopes maps a conversation type to the scope conversations.history
// needs for it.
var historyScopes = map[string]string{
	"public_channel":  "channels:history",
	"private_channel": "groups:history",
	"mpim":            "mpim:history",
	"im":              "im:history",
}

// maxHistoryLimit is the largest page conversations.history returns
// ("Maximum of 999"); a larger limit is cut down to it, as "fewer than the
// requested number of items may be returned".
const maxHistoryLimit = 999

// conversationsHistory answers a channel's messages newest first, within
// (oldest, latest) or [oldest, latest] with inclusive, a page at a time.
// Thread replies are left out, as Slack does; metadata is included only
// with include_all_metadata.
func (s *Server) conversationsHistory(c *call) (obj, error) {
	id := c.args.get("channel")
	if id == "" {
		return nil, invalidArgs("missing required field: channel [json-pointer:/channel]")
	}
	ch := s.st.conversation(c.team, id)
	if ch == nil || ch.hidden(c.tok.userID) {
		return nil, errCode("channel_not_found")
	}
	if err := c.tok.require(historyScopes[conversationType(ch)]); err != nil {
		return nil, err
	}
	if !ch.isMember(c.tok.userID) {
		return nil, errCode("not_in_channel")
	}
	// Without oldest every message counts, the one at ts 0 included.
	oldest, err := parseTSArg(c.args.get("oldest"), -1)
	if err != nil {
		return nil, errCode("invalid_ts_oldest")
	}
	latest, err := parseTSArg(c.args.get("latest"), -1)
	if err != nil {
		return nil, errCode("invalid_ts_latest")
	}
	inclusive := c.args.bool("inclusive")
	limit, err := pageLimit(c.args.get("limit"), 100)
	if err != nil {
		return nil, err
	}
	limit = min(limit, maxHistoryLimit)
	// The cursor names the ts the next page starts at, like Slack's
	// base64("next_ts:<ts without the dot>").
	start := int64(-1)
	if cur := c.args.get("cursor"); cur != "" {
		raw, err := base64.StdEncoding.DecodeString(cur)
		digits, ok := strings.CutPrefix(string(raw), "next_ts:")
		n, perr := strconv.ParseInt(digits, 10, 64)
		if err != nil || !ok || perr != nil || n < 0 {
			return nil, errCode("invalid_cursor")
		}
		start = n
	}
	includeMeta := c.args.bool("include_all_metadata")

	var page []*message
	next := ""
	h := s.st.history[ch.id]
	for i := len(h) - 1; i >= 0; i-- { // newest first
		p := h[i]
		ts := tsMicros(p.ts)
		switch {
		case p.deleted || (p.threadTS != "" && p.threadTS != p.ts):
			continue // thread replies live in conversations.replies
		case latest >= 0 && (ts > latest || (ts == latest && !inclusive)):
			continue
		case start >= 0 && ts > start:
			continue // before the cursor
		}
		if ts < oldest || (ts == oldest && !inclusive) {
			break
		}
		if len(page) == limit {
			next = base64.StdEncoding.EncodeToString([]byte("next_ts:" + strconv.FormatInt(ts, 10)))
			break
		}
		m := s.historyObj(c, p)
		if includeMeta {
			m.Metadata = p.metadata
		}
		page = append(page, m)
	}
	resp := obj{
		"messages": nonNil(page), "has_more": next != "", "pin_count": 0,
		"channel_actions_ts": nil, "channel_actions_count": 0,
		"response_metadata": obj{"next_cursor": next},
	}
	if v := c.args.get("latest"); v != "" {
		resp["latest"] = v
	}
	if v := c.args.get("oldest"); v != "" {
		resp["oldest"] = v
	}
	return resp, nil
}

// historyObj is a message as conversations.history shows it.
func (s *Server) historyObj(c *call, p *posted) *message {
	m := s.messageObj(c.team, p)
	if p.fileID != "" {
		if u := s.uploads[p.fileID]; u != nil && u.file != nil {
			asBot := false
			m.Files, m.Upload, m.DisplayAsBot = []obj{s.fileObj(c.team, u.file)}, true, &asBot
		}
	}
	return m
}

// chatGetPermalink answers a message's permalink,
// https://<domain>.slack.com/archives/<channel>/p<ts without the dot>, with
// thread_ts and cid for a reply.
func (s *Server) chatGetPermalink(c *call) (obj, error) {
	ch := s.st.conversation(c.team, c.args.get("channel"))
	if ch == nil || ch.hidden(c.tok.userID) {
		return nil, errCode("channel_not_found")
	}
	ts := c.args.get("message_ts")
	p := s.st.posted[ch.id+"/"+ts]
	if ts == "" || p == nil || p.deleted {
		return nil, errCode("message_not_found")
	}
	link := "https://" + c.team.ws.Domain + ".slack.com/archives/" + ch.id + "/p" + strings.Replace(p.ts, ".", "", 1)
	if p.threadTS != "" && p.threadTS != p.ts {
		link += "?thread_ts=" + p.threadTS + "&cid=" + ch.id
	}
	return obj{"channel": ch.id, "permalink": link}, nil
}

// parseTSArg reads a history bound: a Slack ts ("1700000000.000100") or
// whole seconds, as microseconds; "" gives def.
func parseTSArg(v string, def int64) (int64, error) {
	if v == "" {
		return def, nil
	}
	secs, frac, _ := strings.Cut(v, ".")
	n, err := strconv.ParseInt(secs, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/1_000_000-1 || len(frac) > 6 || strings.Trim(frac, "0123456789") != "" {
		return 0, strconv.ErrSyntax
	}
	f := 0
	if frac != "" {
		f, _ = strconv.Atoi((frac + "000000")[:6])
	}
	return n*1e6 + int64(f), nil
}

// tsMicros orders message timestamps; every ts the stand-in holds is
// well formed.
func tsMicros(ts string) int64 {
	n, _ := parseTSArg(ts, 0)
	return n
}
