package slackstandin

import (
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
)

// maxDMUsers is the most people conversations.open accepts.
const maxDMUsers = 8

func (s *Server) conversationsOpen(c *call) (obj, error) {
	t := c.team
	if id := c.args.get("channel"); id != "" {
		ch := s.st.conversation(t, id)
		if ch == nil || ch.hidden(c.tok.userID) {
			return nil, errCode("channel_not_found")
		}
		if !ch.im && !ch.mpim {
			return nil, errCode("method_not_supported_for_channel_type")
		}
		return s.openResponse(c, ch, true), nil
	}
	var users []string
	for _, id := range splitList(c.args.get("users")) {
		if id != c.tok.userID && !slices.Contains(users, id) {
			users = append(users, id)
		}
	}
	switch {
	case len(users) == 0:
		return nil, errCode("users_list_not_supplied")
	case len(users) > maxDMUsers:
		return nil, errCode("too_many_users")
	}
	scope := "im:write"
	if len(users) > 1 {
		scope = "mpim:write"
	}
	if err := c.tok.require(scope); err != nil {
		return nil, err
	}
	for _, id := range users {
		u := t.users[id]
		if u == nil {
			return nil, errCode("user_not_found")
		}
		if u.Deleted {
			return nil, errCode("user_disabled")
		}
	}
	ch, existed := s.st.openDM(t, users, s.now())
	return s.openResponse(c, ch, existed), nil
}

// openResponse is conversations.open's answer: the id alone unless
// return_im asks for the whole conversation; no_op and already_open when
// it was open before.
func (s *Server) openResponse(c *call, ch *channel, existed bool) obj {
	resp := obj{"channel": obj{"id": ch.id}}
	if c.args.bool("return_im") {
		resp["channel"] = s.conversationObj(c, ch)
	}
	if existed {
		resp["no_op"] = true
		resp["already_open"] = true
	}
	return resp
}

// conversationTypes maps conversations.list types to the scope they need.
var conversationTypes = map[string]string{
	"public_channel":  "channels:read",
	"private_channel": "groups:read",
	"mpim":            "mpim:read",
	"im":              "im:read",
}

func (s *Server) conversationsList(c *call) (obj, error) {
	types := splitList(c.args.get("types"))
	if len(types) == 0 {
		types = []string{"public_channel"}
	}
	for _, typ := range types {
		scope, ok := conversationTypes[typ]
		if !ok {
			return nil, errCode("invalid_types")
		}
		if err := c.tok.require(scope); err != nil {
			return nil, err
		}
	}
	limit, err := pageLimit(c.args.get("limit"), 100)
	if err != nil {
		return nil, err
	}
	excludeArchived := c.args.bool("exclude_archived")
	var ids []string
	for _, id := range c.team.convOrder {
		ch := s.st.channels[id]
		if ch.hidden(c.tok.userID) || (excludeArchived && ch.archived) || !slices.Contains(types, conversationType(ch)) {
			continue
		}
		ids = append(ids, id)
	}
	page, next, err := paginate(ids, c.args.get("cursor"), "channel", limit)
	if err != nil {
		return nil, err
	}
	list := make([]obj, 0, len(page))
	for _, id := range page {
		list = append(list, s.conversationObj(c, s.st.channels[id]))
	}
	return obj{"channels": list, "response_metadata": obj{"next_cursor": next}}, nil
}

func conversationType(ch *channel) string {
	switch {
	case ch.im:
		return "im"
	case ch.mpim:
		return "mpim"
	case ch.private:
		return "private_channel"
	}
	return "public_channel"
}

// conversationObj is a conversation as conversations.list shows it.
func (s *Server) conversationObj(c *call, ch *channel) obj {
	if ch.im {
		u := c.team.users[ch.imUser]
		return obj{
			"id": ch.id, "created": ch.created, "is_im": true, "is_org_shared": false,
			"user": ch.imUser, "is_user_deleted": u.Deleted, "priority": 0,
		}
	}
	return obj{
		"id": ch.id, "name": ch.name, "name_normalized": ch.name,
		"is_channel": !ch.private, "is_group": ch.private && !ch.mpim, "is_im": false, "is_mpim": ch.mpim,
		"is_private": ch.private, "is_archived": ch.archived, "is_general": ch.name == "general",
		"created": ch.created, "creator": ch.creator, "unlinked": 0,
		"is_shared": false, "is_ext_shared": false, "is_org_shared": false, "pending_shared": []string{},
		"is_pending_ext_shared": false, "is_member": ch.isMember(c.tok.userID),
		"topic":          obj{"value": ch.topic, "creator": "", "last_set": 0},
		"purpose":        obj{"value": ch.purpose, "creator": "", "last_set": 0},
		"previous_names": []string{}, "num_members": len(ch.members),
	}
}

// maxPageLimit is the largest limit Slack's list methods accept.
const maxPageLimit = 1000

// pageLimit parses a list method's limit; 0 or absent means def.
func pageLimit(arg string, def int) (int, error) {
	if arg == "" {
		return def, nil
	}
	n, err := strconv.Atoi(arg)
	if err != nil || n < 0 || n > maxPageLimit {
		return 0, errCode("invalid_limit")
	}
	if n == 0 {
		return def, nil
	}
	return n, nil
}

// paginate cuts ids into a page. Cursors are opaque to clients; like
// Slack's they are base64 of "<kind>:<first id of the next page>".
func paginate(ids []string, cursor, kind string, limit int) (page []string, next string, err error) {
	start := 0
	if cursor != "" {
		raw, err := base64.StdEncoding.DecodeString(cursor)
		id, ok := strings.CutPrefix(string(raw), kind+":")
		if err != nil || !ok {
			return nil, "", errCode("invalid_cursor")
		}
		if start = slices.Index(ids, id); start < 0 {
			return nil, "", errCode("invalid_cursor")
		}
	}
	end := min(start+limit, len(ids))
	if end < len(ids) {
		next = base64.StdEncoding.EncodeToString([]byte(kind + ":" + ids[end]))
	}
	return ids[start:end], next, nil
}
