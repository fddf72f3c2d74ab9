package slackstandin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// method is one Web API method.
type method struct {
	limit Limit  // Slack's tier, per workspace
	scope string // scope the token must hold; "" when none or checked inside
	// anonymous methods authenticate with client credentials, not a token.
	anonymous bool
	handle    func(s *Server, c *call) (obj, error)
}

// methods are the Web API methods the stand-in implements, with Slack's rate
// tiers. chat.postMessage is "special": limited per channel, not per tier.
var methods = map[string]method{
	"auth.test":                    {limit: Tier4, handle: (*Server).authTest},
	"auth.revoke":                  {limit: Tier3, handle: (*Server).authRevoke},
	"apps.uninstall":               {limit: Tier1, handle: (*Server).appsUninstall},
	"oauth.v2.access":              {limit: Tier4, anonymous: true, handle: (*Server).oauthV2Access},
	"chat.postMessage":             {scope: "chat:write", handle: (*Server).chatPostMessage},
	"chat.update":                  {limit: Tier3, scope: "chat:write", handle: (*Server).chatUpdate},
	"chat.postEphemeral":           {limit: Tier4, scope: "chat:write", handle: (*Server).chatPostEphemeral},
	"conversations.open":           {limit: Tier3, handle: (*Server).conversationsOpen},
	"conversations.list":           {limit: Tier2, handle: (*Server).conversationsList},
	"users.list":                   {limit: Tier2, scope: "users:read", handle: (*Server).usersList},
	"users.info":                   {limit: Tier4, scope: "users:read", handle: (*Server).usersInfo},
	"users.lookupByEmail":          {limit: Tier3, scope: "users:read.email", handle: (*Server).usersLookupByEmail},
	"files.getUploadURLExternal":   {limit: Tier4, scope: "files:write", handle: (*Server).filesGetUploadURLExternal},
	"files.completeUploadExternal": {limit: Tier4, scope: "files:write", handle: (*Server).filesCompleteUploadExternal},

	// Reading back what was posted. conversations.history checks the scope
	// of the conversation's type (channels:history, groups:history,
	// im:history, mpim:history) inside. chat.getPermalink needs no scope;
	// its limit is "special", with no published number: modelled as Tier 4.
	"conversations.history": {limit: Tier3, handle: (*Server).conversationsHistory},
	"chat.getPermalink":     {limit: Tier4, handle: (*Server).chatGetPermalink},
	"files.info":            {limit: Tier4, scope: "files:read", handle: (*Server).filesInfo},
}

// call is one Web API request on its way through a handler.
type call struct {
	method string
	args   args
	tok    *token // nil for anonymous methods
	team   *team  // nil for anonymous methods
	req    *http.Request
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	if acceptsGzip(r) {
		gz := newGzipResponse(w)
		defer gz.Close()
		w = gz
	}
	name := r.PathValue("method")
	m, ok := methods[name]
	if !ok {
		writeJSON(w, http.StatusOK, obj{"ok": false, "error": "unknown_method"})
		return
	}
	if s.interfere(w, r, name) {
		return
	}
	a, err := parseArgs(r)
	if err != nil {
		writeAPIResult(w, nil, err)
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Calls[name]++
	c := &call{method: name, args: a, req: r}
	resp, err := s.invoke(m, c)
	outcome := "ok"
	if err != nil {
		outcome = err.Error()
	}
	teamID := ""
	if c.team != nil {
		teamID = c.team.ws.ID
	}
	s.cfg.Logger.Info("slack api call", "method", name, "team", teamID, "outcome", outcome)
	// The headers Slack sets on every Web API reply besides the content's:
	// its request id, the token's scopes and those the method accepts.
	s.reqs++
	h := w.Header()
	h["X-Slack-Req-Id"] = []string{fmt.Sprintf("%032x", s.reqs)}
	if c.tok != nil {
		h["X-Oauth-Scopes"] = []string{strings.Join(c.tok.scopes, ",")}
	}
	if m.scope != "" {
		h["X-Accepted-Oauth-Scopes"] = []string{m.scope}
	}
	writeAPIResult(w, resp, err)
}

// invoke authenticates, rate-limits and runs a method. The caller holds s.mu.
func (s *Server) invoke(m method, c *call) (obj, error) {
	if !m.anonymous {
		tok, err := s.authenticate(c)
		if err != nil {
			return nil, err
		}
		c.tok, c.team = tok, s.st.teams[tok.team]
	}
	limit := m.limit
	if l, ok := s.cfg.RateLimits.Methods[c.method]; ok {
		limit = l
	}
	if limit != (Limit{}) {
		teamID := ""
		if c.team != nil {
			teamID = c.team.ws.ID
		}
		if err := s.allow(c.method+"/"+teamID, limit); err != nil {
			s.stats.RateLimited[c.method]++
			return nil, err
		}
	}
	if m.scope != "" {
		if err := c.tok.require(m.scope); err != nil {
			return nil, err
		}
	}
	resp, err := m.handle(s, c)
	// chat.postMessage limits per channel, inside its handler.
	var rl *rateLimitedError
	if errors.As(err, &rl) {
		s.stats.RateLimited[c.method]++
	}
	return resp, err
}

// args are a method's arguments from a form, a query string or a JSON body.
type args struct {
	form url.Values
	json map[string]json.RawMessage
	// bearer is the token from the Authorization header.
	bearer string
}

const maxAPIBody = 8 << 20

// parseArgs reads arguments like Slack: form-encoded, multipart or query
// arguments; or a JSON object, whose token must come in the Authorization
// header.
func parseArgs(r *http.Request) (args, error) {
	a := args{form: url.Values{}}
	if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		a.bearer = strings.TrimSpace(v)
	}
	ct := mediaType(r.Header.Get("Content-Type"))
	switch {
	case r.Method == http.MethodPost && ct == "application/json":
		body, err := readBody(r)
		if err != nil {
			return a, errCode("request_timeout")
		}
		a.json = map[string]json.RawMessage{}
		if len(bytes.TrimSpace(body)) > 0 {
			if err := json.Unmarshal(body, &a.json); err != nil {
				return a, errCode("invalid_json")
			}
		}
		a.form = r.URL.Query()
	case ct == "multipart/form-data":
		if err := r.ParseMultipartForm(maxAPIBody); err != nil {
			return a, errCode("invalid_form_data")
		}
		a.form = r.Form
	default:
		r.Body = http.MaxBytesReader(nil, r.Body, maxAPIBody)
		if err := r.ParseForm(); err != nil {
			return a, errCode("invalid_form_data")
		}
		a.form = r.Form
	}
	return a, nil
}

// mediaType is the Content-Type's media type, lower case ("" when it does
// not parse). The two forms JSON callers send are recognised without
// mime.ParseMediaType, which makes a map of the parameters on every call.
func mediaType(v string) string {
	switch v {
	case "application/json", "application/json; charset=utf-8":
		return "application/json"
	}
	ct, _, _ := mime.ParseMediaType(v)
	return ct
}

// readBody reads a JSON body of up to maxAPIBody bytes, into a buffer of
// its Content-Length when it has one (io.ReadAll grows one by doubling).
func readBody(r *http.Request) ([]byte, error) {
	if n := r.ContentLength; n > 0 && n <= maxAPIBody {
		body := make([]byte, n)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, err
		}
		return body, nil
	}
	return io.ReadAll(io.LimitReader(r.Body, maxAPIBody))
}

// token is the token the caller sent. A JSON body's token field does not
// count: Slack only reads the header for JSON.
func (a args) token() string {
	if a.bearer != "" {
		return a.bearer
	}
	if a.json != nil {
		return ""
	}
	return a.form.Get("token")
}

// get returns an argument as text; JSON scalars are returned as written.
func (a args) get(name string) string {
	if raw, ok := a.json[name]; ok {
		var s string
		if isJSONString(raw) && json.Unmarshal(raw, &s) == nil {
			return s
		}
		if string(raw) == "null" {
			return ""
		}
		return string(raw)
	}
	return a.form.Get(name)
}

// doc returns an argument that holds a JSON document (blocks, files,
// attachments): a string in a form, a string or inline JSON in a JSON body.
func (a args) doc(name string) []byte {
	if raw, ok := a.json[name]; ok {
		var s string
		if isJSONString(raw) && json.Unmarshal(raw, &s) == nil {
			return []byte(s)
		}
		if string(raw) == "null" {
			return nil
		}
		return raw
	}
	if v := a.form.Get(name); v != "" {
		return []byte(v)
	}
	return nil
}

// isJSONString says whether raw (a value of a JSON body, so valid JSON
// without leading space) is a string: decoding anything else into one
// only made an error to throw away, on every post's metadata.
func isJSONString(raw json.RawMessage) bool { return len(raw) > 0 && raw[0] == '"' }

func (a args) bool(name string) bool {
	switch strings.ToLower(a.get(name)) {
	case "1", "true":
		return true
	}
	return false
}
