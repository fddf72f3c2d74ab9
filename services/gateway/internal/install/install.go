// Package install serves Slack's OAuth v2 "Add to Slack" flow:
//
//  1. GET /slack/install?org=…&admin=…&ticket=… — the browser arrives from
//     the CRM with the install ticket the team registry signed in
//     BeginInstall. The ticket is checked (signature, expiry, org and admin
//     matching the query) and used up, a browser nonce is set in an
//     HttpOnly cookie, and the browser is sent (302) to Slack's authorize
//     page with a state that is signed, expires, names the org and the
//     admin, and holds the hash of that nonce.
//  2. GET /slack/oauth/callback?code=…&state=… — the state's signature and
//     expiry are checked, then the cookie (same browser), then the state is
//     used up (a replay fails), then the code is exchanged with
//     oauth.v2.access, and the outcome is handed to the registry's
//     CompleteInstall. The browser gets a plain success or error page.
//
// Tickets and states are used up with a create-only write in a JetStream
// key-value bucket ([NonceStore]), which holds across gateway replicas.
package install

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/installticket"
	"github.com/crmslack/crmslack/libs/tracectx"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	integrationv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/integration/v1"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"

	"github.com/crmslack/crmslack/services/gateway/internal/oauthstate"
)

// BotScopes are the bot scopes the app asks for. The *:history scopes let
// the egress look a possibly-posted message up after a crash instead of
// guessing (see services/delivery).
var BotScopes = []string{
	"commands", "chat:write", "chat:write.public", "im:write", "users:read", "users:read.email",
	"channels:read", "groups:read", "files:write",
	"channels:history", "groups:history", "im:history", "mpim:history",
}

// Paths served.
const (
	PathInstall  = "/slack/install"
	PathCallback = "/slack/oauth/callback"
)

// Nonces records used tickets and states: Consume reports true the first
// time a key is seen, false after.
type Nonces interface {
	Consume(ctx context.Context, key string) (bool, error)
}

// Exchanger talks to Slack's OAuth endpoint.
type Exchanger interface {
	// Exchange trades an authorization code for tokens (oauth.v2.access).
	Exchange(ctx context.Context, code, redirectURI string) (*slack.OAuthV2Response, error)
	// Domain returns the team's Slack domain, via auth.test with the new
	// token ("" when unknown).
	Domain(ctx context.Context, botToken string) string
}

// Registry is the part of the team registry the flow calls.
type Registry interface {
	CompleteInstall(ctx context.Context, in *teamsv1.CompleteInstallRequest, opts ...grpc.CallOption) (*teamsv1.CompleteInstallResponse, error)
}

// Config configures the handler.
type Config struct {
	ClientID     string
	AuthorizeURL string
	// PublicURL is the gateway's public base URL; the redirect_uri is
	// PublicURL + PathCallback, and cookies are Secure when it is https.
	PublicURL string
	// CallTimeout bounds the Slack exchange and the registry call each.
	CallTimeout time.Duration
}

// Handler serves the two endpoints.
type Handler struct {
	cfg      Config
	tickets  *installticket.Signer
	states   *oauthstate.Codec
	nonces   Nonces
	slack    Exchanger
	registry Registry
	log      *slog.Logger
	now      func() time.Time
	secure   bool
}

// New returns the handler. now may be nil.
func New(cfg Config, tickets *installticket.Signer, states *oauthstate.Codec, nonces Nonces, ex Exchanger, reg Registry, log *slog.Logger, now func() time.Time) *Handler {
	if now == nil {
		now = time.Now
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 15 * time.Second
	}
	cfg.PublicURL = strings.TrimSuffix(cfg.PublicURL, "/")
	return &Handler{cfg: cfg, tickets: tickets, states: states, nonces: nonces, slack: ex, registry: reg, log: log, now: now,
		secure: strings.HasPrefix(cfg.PublicURL, "https://")}
}

// Register adds the routes to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+PathInstall, h.install)
	mux.HandleFunc("GET "+PathCallback, h.callback)
}

// RedirectURI is the callback URL registered with Slack.
func (h *Handler) RedirectURI() string { return h.cfg.PublicURL + PathCallback }

// page is what the browser is shown.
type page struct {
	Title   string
	Message string
	OK      bool
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>body{font-family:sans-serif;max-width:36em;margin:4em auto;line-height:1.5}h1{color:{{if .OK}}#2e7d32{{else}}#b71c1c{{end}}}</style>
</head><body><h1>{{.Title}}</h1><p>{{.Message}}</p></body></html>
`))

func (h *Handler) show(w http.ResponseWriter, status int, p page) {
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, p)
}

func (h *Handler) fail(w http.ResponseWriter, status int, msg string) {
	h.show(w, status, page{Title: "Slack was not connected", Message: msg})
}

// Messages shown in the browser; none names an internal detail.
const (
	msgStartAgain    = "Start again from the Slack page of your CRM's settings."
	msgBadTicket     = "This installation link is invalid or has expired. " + msgStartAgain
	msgUsedTicket    = "This installation link was already used. " + msgStartAgain
	msgBadState      = "This answer from Slack could not be verified, or it came too late. " + msgStartAgain
	msgWrongBrowser  = "This installation was started in another browser, or its cookie was blocked. Finish it in the browser where you started it, or start again from the Slack page of your CRM's settings."
	msgReplayedState = "This answer from Slack was already used. " + msgStartAgain
	msgDenied        = "You cancelled the installation in Slack. Nothing was changed. " + msgStartAgain
	msgSlackRefused  = "Slack did not accept the authorisation. " + msgStartAgain
	msgUnavailable   = "The installation could not be completed right now. Try again in a few minutes."
)

// headOnly answers a HEAD request (link checkers, prefetchers) without
// spending the single-use ticket or state it carries.
func headOnly(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodHead {
		return false
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	return true
}

func (h *Handler) install(w http.ResponseWriter, r *http.Request) {
	if headOnly(w, r) {
		return
	}
	ctx := tracectx.Ensure(r.Context())
	q := r.URL.Query()
	t, err := h.tickets.Verify(q.Get("ticket"))
	if err != nil || t.OrgID != q.Get("org") || t.AdminID != q.Get("admin") {
		reason := "org or admin does not match the ticket"
		if err != nil {
			reason = err.Error()
		}
		h.log.WarnContext(ctx, "install refused: bad ticket", "reason", reason)
		h.fail(w, http.StatusBadRequest, msgBadTicket)
		return
	}
	first, err := h.nonces.Consume(ctx, "ticket_"+t.Nonce)
	if err != nil {
		h.log.ErrorContext(ctx, "install failed: recording the ticket", "err", err)
		h.fail(w, http.StatusServiceUnavailable, msgUnavailable)
		return
	}
	if !first {
		h.log.WarnContext(ctx, "install refused: ticket already used", "org", t.OrgID, "admin", t.AdminID)
		h.fail(w, http.StatusBadRequest, msgUsedTicket)
		return
	}
	raw, st, cookie, err := h.states.Issue(t.OrgID, t.AdminID, t.AdminName)
	if err != nil {
		h.log.ErrorContext(ctx, "install failed: issuing state", "err", err)
		h.fail(w, http.StatusInternalServerError, msgUnavailable)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: st.CookieName(), Value: cookie, Path: PathCallback,
		MaxAge: int(h.states.TTL() / time.Second), HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteLaxMode,
	})
	v := url.Values{
		"client_id":    {h.cfg.ClientID},
		"scope":        {strings.Join(BotScopes, ",")},
		"redirect_uri": {h.RedirectURI()},
		"state":        {raw},
	}
	if t.TeamHint != "" {
		v.Set("team", t.TeamHint)
	}
	h.log.InfoContext(ctx, "install started", "org", t.OrgID, "admin", t.AdminID)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, h.cfg.AuthorizeURL+"?"+v.Encode(), http.StatusFound)
}

func (h *Handler) callback(w http.ResponseWriter, r *http.Request) {
	if headOnly(w, r) {
		return
	}
	ctx := tracectx.Ensure(r.Context())
	q := r.URL.Query()
	st, err := h.states.Decode(q.Get("state"))
	if err != nil {
		h.log.WarnContext(ctx, "oauth callback refused: bad state", "reason", err.Error())
		h.fail(w, http.StatusBadRequest, msgBadState)
		return
	}
	var cookie string
	if c, err := r.Cookie(st.CookieName()); err == nil {
		cookie = c.Value
	}
	if err := st.CheckBrowser(cookie); err != nil {
		h.log.WarnContext(ctx, "oauth callback refused: state from another browser", "org", st.OrgID, "browser_binding_sent", cookie != "")
		h.fail(w, http.StatusBadRequest, msgWrongBrowser)
		return
	}
	first, err := h.nonces.Consume(ctx, "state_"+st.ID)
	if err != nil {
		h.log.ErrorContext(ctx, "oauth callback failed: recording the state", "err", err)
		h.fail(w, http.StatusServiceUnavailable, msgUnavailable)
		return
	}
	if !first {
		h.log.WarnContext(ctx, "oauth callback refused: state replayed", "org", st.OrgID)
		h.fail(w, http.StatusBadRequest, msgReplayedState)
		return
	}
	// The state is spent: the cookie is of no further use.
	http.SetCookie(w, &http.Cookie{Name: st.CookieName(), Value: "", Path: PathCallback, MaxAge: -1, HttpOnly: true, Secure: h.secure, SameSite: http.SameSiteLaxMode})

	if e := q.Get("error"); e != "" {
		h.log.InfoContext(ctx, "install cancelled in Slack", "org", st.OrgID, "admin", st.AdminID, "slack_error", e)
		if e == "access_denied" {
			h.show(w, http.StatusOK, page{Title: "Installation cancelled", Message: msgDenied})
			return
		}
		h.fail(w, http.StatusBadRequest, msgSlackRefused)
		return
	}
	code := q.Get("code")
	if code == "" || len(code) > 512 {
		h.fail(w, http.StatusBadRequest, msgSlackRefused)
		return
	}
	team, err := h.complete(ctx, st, code)
	if err != nil {
		var fe *flowError
		if errors.As(err, &fe) {
			h.log.WarnContext(ctx, "install failed", "org", st.OrgID, "admin", st.AdminID, "err", fe.err)
			h.fail(w, fe.status, fe.msg)
			return
		}
		h.log.ErrorContext(ctx, "install failed", "org", st.OrgID, "admin", st.AdminID, "err", err)
		h.fail(w, http.StatusBadGateway, msgUnavailable)
		return
	}
	h.show(w, http.StatusOK, page{OK: true, Title: "Slack is connected",
		Message: fmt.Sprintf("The Slack workspace “%s” is now connected to your CRM. You can close this window.", team)})
}

// flowError is a failure with what the browser should be told.
type flowError struct {
	status int
	msg    string
	err    error
}

func (e *flowError) Error() string { return e.err.Error() }
func (e *flowError) Unwrap() error { return e.err }

func (h *Handler) complete(ctx context.Context, st oauthstate.State, code string) (string, error) {
	xctx, cancel := context.WithTimeout(ctx, h.cfg.CallTimeout)
	resp, err := h.slack.Exchange(xctx, code, h.RedirectURI())
	cancel()
	if err != nil {
		var se slack.SlackErrorResponse
		if errors.As(err, &se) {
			// Slack's code (invalid_code, bad_redirect_uri…), never a token.
			return "", &flowError{status: http.StatusBadRequest, msg: msgSlackRefused, err: fmt.Errorf("oauth.v2.access: %s", se.Err)}
		}
		return "", &flowError{status: http.StatusBadGateway, msg: msgUnavailable, err: fmt.Errorf("oauth.v2.access: %w", err)}
	}
	teamID, name := resp.Team.ID, resp.Team.Name
	if resp.IsEnterpriseInstall && teamID == "" {
		teamID, name = resp.Enterprise.ID, resp.Enterprise.Name
	}
	if resp.AccessToken == "" || resp.TokenType != "bot" || resp.BotUserID == "" || teamID == "" {
		return "", &flowError{status: http.StatusBadGateway, msg: msgSlackRefused,
			err: fmt.Errorf("oauth.v2.access answered without a bot token, bot user or team (token_type %q)", resp.TokenType)}
	}
	dctx, cancel := context.WithTimeout(ctx, h.cfg.CallTimeout)
	domain := h.slack.Domain(dctx, resp.AccessToken)
	cancel()
	req := &teamsv1.CompleteInstallRequest{
		OrgId:       st.OrgID,
		InstalledBy: &commonv1.CrmUserRef{Id: st.AdminID, Name: st.AdminName},
		Team: &integrationv1.Team{
			TeamId: teamID, Name: name, Domain: domain, EnterpriseId: resp.Enterprise.ID,
			BotUserId: resp.BotUserID, AppId: resp.AppID, Scopes: splitScopes(resp.Scope),
			InstallerSlackUserId: resp.AuthedUser.ID,
		},
		BotToken:     resp.AccessToken,
		RefreshToken: resp.RefreshToken,
	}
	if resp.ExpiresIn > 0 {
		req.TokenExpiresAt = timestamppb.New(h.now().Add(time.Duration(resp.ExpiresIn) * time.Second))
	}
	cctx, cancel := context.WithTimeout(ctx, h.cfg.CallTimeout)
	defer cancel()
	out, err := h.registry.CompleteInstall(cctx, req)
	if err != nil {
		s := status.Convert(err)
		msg := msgUnavailable
		code := http.StatusBadGateway
		if s.Code() == codes.InvalidArgument || s.Code() == codes.FailedPrecondition {
			msg, code = "The team registry refused this workspace: "+s.Message()+". "+msgStartAgain, http.StatusBadRequest
		}
		return "", &flowError{status: code, msg: msg, err: fmt.Errorf("CompleteInstall: %s: %s", s.Code(), s.Message())}
	}
	h.log.InfoContext(ctx, "install completed", "org", st.OrgID, "team", teamID, "admin", st.AdminID,
		"reinstall", out.GetReinstall(), "rotating", resp.RefreshToken != "")
	return name, nil
}

func splitScopes(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
