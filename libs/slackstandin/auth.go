package slackstandin

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// token is an access token bound to a workspace.
type token struct {
	value   string
	team    string
	bot     bool   // bot token (xoxb) or user token (xoxp)
	userID  string // the bot user for bot tokens
	botID   string
	scopes  []string
	expires time.Time // zero: never (rotation off)
	revoked bool
}

// require answers missing_scope, with Slack's needed/provided fields, unless
// the token holds scope.
func (t *token) require(scope string) error {
	if t.has(scope) {
		return nil
	}
	return &apiError{code: "missing_scope", needed: scope, provided: strings.Join(t.scopes, ",")}
}

func (t *token) has(scope string) bool { return slices.Contains(t.scopes, scope) }

// authenticate finds the caller's token and checks it is usable.
func (s *Server) authenticate(c *call) (*token, error) {
	v := c.args.token()
	if v == "" {
		return nil, errCode("not_authed")
	}
	tok := s.tokens[v]
	switch {
	case tok == nil:
		return nil, errCode("invalid_auth")
	case tok.revoked:
		return nil, errCode("token_revoked")
	case !tok.expires.IsZero() && !s.now().Before(tok.expires):
		return nil, errCode("token_expired")
	}
	t := s.st.teams[tok.team]
	if t.ws.Inactive {
		return nil, errCode("account_inactive")
	}
	if u := t.users[tok.userID]; u != nil && u.Deleted {
		return nil, errCode("account_inactive")
	}
	return tok, nil
}

// mintToken creates a token for team. With rotation the token expires and
// carries Slack's xoxe. prefix.
func (s *Server) mintToken(t *team, bot bool, userID string, scopes []string, rotating bool) *token {
	kind := "xoxp"
	if bot {
		kind = "xoxb"
	}
	digits := "0123456789"
	value := fmt.Sprintf("%s-%s-%s-%s", kind, randomString(digits, 12), randomString(digits, 13),
		randomString(idAlphabet+"abcdefghijklmnopqrstuvwxyz", 24))
	tok := &token{team: t.ws.ID, bot: bot, userID: userID, scopes: slices.Clone(scopes)}
	if bot {
		tok.botID = t.ws.Bot.BotID
	}
	if rotating {
		value = "xoxe." + kind + "-1-" + randomString(idAlphabet+"abcdefghijklmnopqrstuvwxyz", 40)
		tok.expires = s.now().Add(s.cfg.App.TokenExpiresIn)
	}
	tok.value = value
	s.tokens[value] = tok
	return tok
}

// IssueBotToken returns a non-expiring bot token for teamID, holding scopes
// (default: AppConfig.BotScopes). It panics on an unknown team, which is a
// mistake in the test, not a Slack behaviour.
func (s *Server) IssueBotToken(teamID string, scopes ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.st.teams[teamID]
	if t == nil {
		panic(fmt.Sprintf("slackstandin: IssueBotToken: unknown team %q", teamID))
	}
	if len(scopes) == 0 {
		scopes = s.cfg.App.BotScopes
	}
	s.dirty++
	return s.mintToken(t, true, t.ws.Bot.UserID, scopes, false).value
}

// RevokeTeam uninstalls the app from teamID: its tokens then answer
// token_revoked and its refresh tokens invalid_refresh_token. A new OAuth
// install works again.
func (s *Server) RevokeTeam(teamID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revokeTeamLocked(teamID)
	s.dirty++
}

func (s *Server) revokeTeamLocked(teamID string) {
	for _, t := range s.tokens {
		if t.team == teamID {
			t.revoked = true
		}
	}
	for _, r := range s.refreshes {
		if r.team == teamID {
			r.used = true
		}
	}
}

func (s *Server) authTest(c *call) (obj, error) {
	ws := c.team.ws
	resp := obj{
		"url":                   "https://" + ws.Domain + ".slack.com/",
		"team":                  ws.Name,
		"user":                  c.team.users[c.tok.userID].Name,
		"team_id":               ws.ID,
		"user_id":               c.tok.userID,
		"is_enterprise_install": false,
	}
	if c.tok.bot {
		resp["bot_id"] = c.tok.botID
	}
	if ws.Enterprise != nil {
		resp["enterprise_id"] = ws.Enterprise.ID
	}
	return resp, nil
}

func (s *Server) authRevoke(c *call) (obj, error) {
	if c.args.bool("test") {
		return obj{"revoked": false}, nil
	}
	c.tok.revoked = true
	return obj{"revoked": true}, nil
}

func (s *Server) appsUninstall(c *call) (obj, error) {
	if err := s.checkClient(c.args.get("client_id"), c.args.get("client_secret")); err != nil {
		return nil, err
	}
	s.revokeTeamLocked(c.team.ws.ID)
	return obj{}, nil
}

// checkClient authenticates the app by its client credentials.
func (s *Server) checkClient(id, secret string) error {
	if id != s.cfg.App.ClientID {
		return errCode("invalid_client_id")
	}
	if secret != s.cfg.App.ClientSecret {
		return errCode("bad_client_secret")
	}
	return nil
}

// serveIssueToken mints a bot token over HTTP for local runs:
// POST /_standin/tokens?team=T…[&scope=a,b].
func (s *Server) serveIssueToken(w http.ResponseWriter, r *http.Request) {
	teamID := r.URL.Query().Get("team")
	s.mu.Lock()
	if teamID == "" {
		teamID = s.st.order[0]
	}
	known := s.st.teams[teamID] != nil
	s.mu.Unlock()
	if !known {
		writeJSON(w, http.StatusNotFound, obj{"ok": false, "error": "team_not_found"})
		return
	}
	var scopes []string
	if sc := r.URL.Query().Get("scope"); sc != "" {
		scopes = strings.Split(sc, ",")
	}
	writeJSON(w, http.StatusOK, obj{"ok": true, "team_id": teamID, "access_token": s.IssueBotToken(teamID, scopes...)})
}

// LiveTokens counts a team's tokens not revoked (expired ones included).
func (s *Server) LiveTokens(teamID string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, t := range s.tokens {
		if t.team == teamID && !t.revoked {
			n++
		}
	}
	return n
}
