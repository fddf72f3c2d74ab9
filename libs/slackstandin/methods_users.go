package slackstandin

import (
	"strings"
	"time"
	_ "time/tzdata" // tz_offset must not depend on the host's zoneinfo
)

func (s *Server) usersList(c *call) (obj, error) {
	limit, err := pageLimit(c.args.get("limit"), maxPageLimit)
	if err != nil {
		return nil, err
	}
	page, next, err := paginate(c.team.userOrder, c.args.get("cursor"), "user", limit)
	if err != nil {
		return nil, err
	}
	members := make([]obj, 0, len(page))
	for _, id := range page {
		members = append(members, s.userObj(c, c.team.users[id]))
	}
	return obj{"members": members, "cache_ts": s.now().Unix(), "response_metadata": obj{"next_cursor": next}}, nil
}

func (s *Server) usersInfo(c *call) (obj, error) {
	u := c.team.users[c.args.get("user")]
	if u == nil {
		return nil, errCode("user_not_found")
	}
	return obj{"user": s.userObj(c, u)}, nil
}

func (s *Server) usersLookupByEmail(c *call) (obj, error) {
	email := strings.TrimSpace(c.args.get("email"))
	for _, id := range c.team.userOrder {
		if u := c.team.users[id]; email != "" && strings.EqualFold(u.Email, email) {
			return obj{"user": s.userObj(c, u)}, nil
		}
	}
	return nil, errCode("users_not_found")
}

// userObj is a user as users.info shows it. The email is only there for a
// token with users:read.email, as at Slack.
func (s *Server) userObj(c *call, u *User) obj {
	t := c.team
	tz := u.TZ
	if tz == "" {
		tz = "UTC"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		loc = time.UTC
	}
	label, offset := s.now().In(loc).Zone()
	profile := obj{
		"real_name": u.RealName, "real_name_normalized": u.RealName,
		"display_name": u.Name, "display_name_normalized": u.Name,
		"status_text": "", "status_emoji": "", "team": t.ws.ID,
		"image_48":  "https://avatars.slack-edge.com/standin/" + u.ID + "_48.png",
		"image_192": "https://avatars.slack-edge.com/standin/" + u.ID + "_192.png",
	}
	if u.Email != "" && c.tok.has("users:read.email") {
		profile["email"] = u.Email
	}
	if u.ID == t.ws.Bot.UserID {
		profile["bot_id"] = t.ws.Bot.BotID
		profile["api_app_id"] = s.cfg.App.AppID
		profile["always_active"] = true
	}
	return obj{
		"id": u.ID, "team_id": t.ws.ID, "name": u.Name, "deleted": u.Deleted, "color": "9f69e7",
		"real_name": u.RealName, "tz": tz, "tz_label": label, "tz_offset": offset,
		"profile": profile, "is_admin": u.IsAdmin, "is_owner": false, "is_primary_owner": false,
		"is_restricted": false, "is_ultra_restricted": false, "is_bot": u.IsBot,
		"is_app_user": false, "updated": 1700000000, "has_2fa": false,
	}
}
