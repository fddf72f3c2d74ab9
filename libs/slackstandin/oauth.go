package slackstandin

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// codeLifetime is how long an OAuth code can be exchanged, as at Slack.
const codeLifetime = 10 * time.Minute

// authCode is a one-time OAuth code from the authorize page.
type authCode struct {
	team        string
	user        string
	scopes      []string
	userScopes  []string
	redirectURI string
	expires     time.Time
	used        bool
}

// refreshToken is a rotation refresh token; it can be exchanged once.
type refreshToken struct {
	team      string
	bot       bool
	userID    string // who the access token acts as
	installer string // the person who installed the app
	scopes    []string
	used      bool
}

// serveAuthorize plays the user clicking "Allow" on Slack's consent page:
// GET /oauth/v2/authorize?client_id=&scope=&user_scope=&redirect_uri=&state=
// [&team=T…][&user=U…][&deny=1] redirects to redirect_uri with a code, or
// with error=access_denied when deny=1.
func (s *Server) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	fail := func(code string) {
		// Slack shows an HTML error page here rather than redirecting.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = fmt.Fprintln(w, code)
	}
	if q.Get("client_id") != s.cfg.App.ClientID {
		fail("invalid_client_id")
		return
	}
	redirectURI := q.Get("redirect_uri")
	target, err := url.Parse(redirectURI)
	if redirectURI == "" || err != nil || !target.IsAbs() || !s.redirectAllowed(redirectURI) {
		fail("bad_redirect_uri")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	teamID := q.Get("team")
	if teamID == "" {
		teamID = s.st.order[0]
	}
	t := s.st.teams[teamID]
	if t == nil {
		fail("team_not_found")
		return
	}
	back := target.Query()
	if st := q.Get("state"); st != "" {
		back.Set("state", st)
	}
	if q.Get("deny") == "1" {
		back.Set("error", "access_denied")
		target.RawQuery = back.Encode()
		http.Redirect(w, r, target.String(), http.StatusFound)
		return
	}
	installer := q.Get("user")
	if installer == "" {
		installer = defaultInstaller(t)
	}
	if u := t.users[installer]; u == nil || u.IsBot || u.Deleted {
		fail("invalid_user")
		return
	}
	scopes := splitList(q.Get("scope"))
	if len(scopes) == 0 && q.Get("user_scope") == "" {
		scopes = s.cfg.App.BotScopes
	}
	digits := "0123456789"
	code := fmt.Sprintf("%s.%s.%s", randomString(digits, 12), randomString(digits, 13), randomString("0123456789abcdef", 64))
	s.codes[code] = &authCode{
		team: teamID, user: installer, scopes: scopes, userScopes: splitList(q.Get("user_scope")),
		redirectURI: redirectURI, expires: s.now().Add(codeLifetime),
	}
	back.Set("code", code)
	target.RawQuery = back.Encode()
	http.Redirect(w, r, target.String(), http.StatusFound)
}

func (s *Server) redirectAllowed(uri string) bool {
	if len(s.cfg.App.RedirectURLs) == 0 {
		return true
	}
	for _, p := range s.cfg.App.RedirectURLs {
		if strings.HasPrefix(uri, p) {
			return true
		}
	}
	return false
}

// defaultInstaller is the first admin, else the first active person.
func defaultInstaller(t *team) string {
	first := ""
	for _, id := range t.userOrder {
		u := t.users[id]
		if u.IsBot || u.Deleted {
			continue
		}
		if u.IsAdmin {
			return id
		}
		if first == "" {
			first = id
		}
	}
	return first
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// oauthV2Access exchanges a code (grant_type authorization_code, the
// default) or a refresh token (grant_type refresh_token) for tokens. Client
// credentials come as form fields or HTTP Basic auth.
func (s *Server) oauthV2Access(c *call) (obj, error) {
	id, secret, ok := c.req.BasicAuth()
	if !ok {
		id, secret = c.args.get("client_id"), c.args.get("client_secret")
	}
	if err := s.checkClient(id, secret); err != nil {
		return nil, err
	}
	switch c.args.get("grant_type") {
	case "", "authorization_code":
		return s.exchangeCode(c)
	case "refresh_token":
		return s.exchangeRefresh(c)
	default:
		return nil, errCode("invalid_grant_type")
	}
}

func (s *Server) exchangeCode(c *call) (obj, error) {
	code := s.codes[c.args.get("code")]
	if code == nil || code.used || !s.now().Before(code.expires) {
		return nil, errCode("invalid_code")
	}
	// A code is burnt by its first exchange, even a failed one.
	code.used = true
	if c.args.get("redirect_uri") != code.redirectURI {
		return nil, errCode("bad_redirect_uri")
	}
	t := s.st.teams[code.team]
	c.team = t
	resp := obj{
		"app_id":                s.cfg.App.AppID,
		"team":                  obj{"id": t.ws.ID, "name": t.ws.Name},
		"enterprise":            enterpriseObj(t),
		"is_enterprise_install": false,
	}
	authed := obj{"id": code.user}
	if len(code.userScopes) > 0 {
		for k, v := range s.grant(t, false, code.user, code.user, code.userScopes) {
			authed[k] = v
		}
	}
	resp["authed_user"] = authed
	if len(code.scopes) > 0 {
		for k, v := range s.grant(t, true, t.ws.Bot.UserID, code.user, code.scopes) {
			resp[k] = v
		}
		resp["bot_user_id"] = t.ws.Bot.UserID
	}
	return resp, nil
}

// grant mints an access token (and with rotation a refresh token) and
// returns the fields Slack reports for it.
func (s *Server) grant(t *team, bot bool, userID, installer string, scopes []string) obj {
	rotating := s.cfg.App.TokenRotation
	tok := s.mintToken(t, bot, userID, scopes, rotating)
	kind := "user"
	if bot {
		kind = "bot"
	}
	out := obj{"access_token": tok.value, "token_type": kind, "scope": strings.Join(scopes, ",")}
	if rotating {
		rt := "xoxe-1-" + randomString(idAlphabet+"abcdefghijklmnopqrstuvwxyz", 60)
		s.refreshes[rt] = &refreshToken{team: t.ws.ID, bot: bot, userID: userID, installer: installer, scopes: scopes}
		out["refresh_token"] = rt
		out["expires_in"] = int(s.cfg.App.TokenExpiresIn / time.Second)
	}
	return out
}

// exchangeRefresh trades a refresh token for a new access and refresh token
// pair. The old refresh token stops working; the old access token keeps
// working until it expires, as at Slack.
func (s *Server) exchangeRefresh(c *call) (obj, error) {
	rt := s.refreshes[c.args.get("refresh_token")]
	if rt == nil || rt.used {
		return nil, errCode("invalid_refresh_token")
	}
	rt.used = true
	t := s.st.teams[rt.team]
	c.team = t
	resp := obj{
		"app_id":                s.cfg.App.AppID,
		"team":                  obj{"id": t.ws.ID, "name": t.ws.Name},
		"enterprise":            enterpriseObj(t),
		"is_enterprise_install": false,
	}
	for k, v := range s.grant(t, rt.bot, rt.userID, rt.installer, rt.scopes) {
		resp[k] = v
	}
	resp["authed_user"] = obj{"id": rt.installer}
	if rt.bot {
		resp["bot_user_id"] = rt.userID
	}
	return resp, nil
}

func enterpriseObj(t *team) any {
	if t.ws.Enterprise == nil {
		return nil
	}
	return obj{"id": t.ws.Enterprise.ID, "name": t.ws.Enterprise.Name}
}
