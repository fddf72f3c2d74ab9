// Package gateway is the only component that accepts HTTP from Slack. It
// verifies every request's signature, publishes verified slash commands,
// interactions and events to JetStream and acknowledges them at once, and
// runs the "Add to Slack" OAuth flow, handing its outcome to the team
// registry over gRPC. It holds no CRM data. Run is its in-process entry
// point, used by cmd/gateway and the local runner.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/libs/identity"
	"github.com/crmslack/crmslack/libs/installticket"
	"github.com/crmslack/crmslack/libs/orgaccess"
	"github.com/crmslack/crmslack/libs/responseurl"
	"github.com/crmslack/crmslack/libs/service"
	"github.com/crmslack/crmslack/libs/signed"
	"github.com/crmslack/crmslack/libs/topology"
	queryv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/query/v1"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"

	"github.com/crmslack/crmslack/services/gateway/internal/followup"
	"github.com/crmslack/crmslack/services/gateway/internal/install"
	"github.com/crmslack/crmslack/services/gateway/internal/oauthstate"
	"github.com/crmslack/crmslack/services/gateway/internal/queryanswer"
	"github.com/crmslack/crmslack/services/gateway/internal/slackhttp"
	"github.com/crmslack/crmslack/services/gateway/internal/teamdir"
	"github.com/crmslack/crmslack/services/gateway/internal/verify"
)

// Config is the gateway's configuration. Each field names its variable and
// default.
type Config struct {
	// Connections are the trust files (TLS_CERT_FILE, TLS_KEY_FILE,
	// TLS_CA_FILE, NATS_USER, NATS_PASSWORD), NATS_URL, NATS_REPLICAS (of
	// the SLACK_IN stream and the nonce bucket) and GATEWAY_OPS_ADDR
	// (default 127.0.0.1:8081); see libs/service. Their Listeners may also
	// hold the "http" one (ListenerHTTP): a test binds port 0 and knows the
	// public URL before the gateway starts.
	service.Connections
	// Addr is GATEWAY_ADDR, the HTTP listener for Slack and browsers.
	// Default 127.0.0.1:8080.
	Addr string
	// PublicURL is GATEWAY_PUBLIC_URL, how Slack and browsers reach Addr
	// (the OAuth redirect_uri is <it>/slack/oauth/callback; cookies are
	// Secure when it is https). Default http://127.0.0.1:8080.
	PublicURL string
	// StateKey is GATEWAY_STATE_KEY: HMAC key(s) of the OAuth state,
	// comma-separated, at least 32 bytes each; the first signs. Required.
	StateKey string
	// InstallTicketKey is INSTALL_TICKET_KEY: the key(s) the team registry
	// signs install tickets with. Required.
	InstallTicketKey string
	// SigningSecret is SLACK_SIGNING_SECRET: verifies Slack's requests;
	// several comma-separated during a rotation. Required.
	SigningSecret string
	// ClientID is SLACK_CLIENT_ID. Required.
	ClientID string
	// ClientSecret is SLACK_CLIENT_SECRET. Required.
	ClientSecret string
	// SlackAPIURL is SLACK_API_URL. Default https://slack.com/api/.
	SlackAPIURL string
	// SlackAuthorizeURL is SLACK_AUTHORIZE_URL. Default
	// https://slack.com/oauth/v2/authorize.
	SlackAuthorizeURL string
	// TeamsAddr is TEAMS_ADDR, the team registry's gRPC address. Default
	// 127.0.0.1:9101.
	TeamsAddr string
	// MaxBody is GATEWAY_MAX_BODY_BYTES, the cap on a Slack request body.
	// Default 1048576 (1 MiB).
	MaxBody int
	// AckBudget is GATEWAY_ACK_BUDGET: how long a Slack request may wait
	// for its publish before the gateway answers 503 (Slack retries).
	// Default 2.5s, inside Slack's 3 s.
	AckBudget time.Duration

	// QueryAddr is QUERY_ADDR, the query service's gRPC address. Default
	// 127.0.0.1:9103; empty (only in code) publishes every command instead
	// of answering any while Slack waits.
	QueryAddr string
	// QueryCommands is GATEWAY_QUERY_COMMANDS: the slash commands answered
	// by the query service while Slack waits, comma-separated. Default /zcrm.
	QueryCommands string
	// AnswerBudget is GATEWAY_ANSWER_BUDGET: how long a slash command waits
	// for its answer before the gateway says "Searching…" and the answer
	// follows through the response_url. Default 1.5s (100ms to 2.5s); 0
	// means the default.
	AnswerBudget time.Duration

	// ResponseURLBases is GATEWAY_RESPONSE_URL_BASES: comma-separated
	// origins whose /commands/ and /actions/ paths a response_url may be
	// (Slack's reply endpoints); SLACK_API_URL's origin is added, so a
	// local stand-in's replies are accepted the same way. Default
	// https://hooks.slack.com.
	ResponseURLBases []string

	// Ready, not from the environment, is called once the gateway serves,
	// with the addresses it bound (tests listen on port 0).
	Ready func(Addrs)
	// Now, not from the environment, is the clock. Default time.Now.
	Now func() time.Time
}

// Addrs are the bound listen addresses.
type Addrs struct {
	HTTP, Ops string
}

// vars are the gateway's own connection variables and their defaults: no
// database, no gRPC API.
var vars = service.Vars{Prefix: "GATEWAY", OpsAddr: "127.0.0.1:8081"}

// ConfigFromEnv reads the configuration; problems are recorded in l.
func ConfigFromEnv(l *envconfig.Loader) Config {
	return Config{
		Connections:       vars.FromEnv(l),
		Addr:              l.String("GATEWAY_ADDR", "127.0.0.1:8080"),
		PublicURL:         l.URL("GATEWAY_PUBLIC_URL", "http://127.0.0.1:8080", "http", "https"),
		StateKey:          l.Required("GATEWAY_STATE_KEY"),
		InstallTicketKey:  l.Required("INSTALL_TICKET_KEY"),
		SigningSecret:     l.Required("SLACK_SIGNING_SECRET"),
		ClientID:          l.Required("SLACK_CLIENT_ID"),
		ClientSecret:      l.Required("SLACK_CLIENT_SECRET"),
		SlackAPIURL:       l.URL("SLACK_API_URL", "https://slack.com/api/", "http", "https"),
		SlackAuthorizeURL: l.URL("SLACK_AUTHORIZE_URL", "https://slack.com/oauth/v2/authorize", "http", "https"),
		TeamsAddr:         l.String("TEAMS_ADDR", "127.0.0.1:9101"),
		MaxBody:           l.Int("GATEWAY_MAX_BODY_BYTES", slackhttp.DefaultMaxBody, 4096, 16<<20),
		AckBudget:         l.Duration("GATEWAY_ACK_BUDGET", slackhttp.DefaultAckBudget, 100*time.Millisecond, 2900*time.Millisecond),
		QueryAddr:         l.String("QUERY_ADDR", "127.0.0.1:9103"),
		QueryCommands:     l.String("GATEWAY_QUERY_COMMANDS", "/zcrm"),
		AnswerBudget:      l.Duration("GATEWAY_ANSWER_BUDGET", slackhttp.DefaultAnswerBudget, 100*time.Millisecond, 2500*time.Millisecond),
		ResponseURLBases:  splitList(l.String("GATEWAY_RESPONSE_URL_BASES", responseurl.SlackBase)),
	}
}

// Validate reports every invalid field by its variable name, never with a
// secret's value.
func (c Config) Validate() error {
	var p envconfig.Problems
	vars.Check(&p, c.Connections)
	addrs := map[string]string{"GATEWAY_ADDR": c.Addr, "TEAMS_ADDR": c.TeamsAddr}
	if c.QueryAddr != "" {
		addrs["QUERY_ADDR"] = c.QueryAddr
	}
	p.HostPort(addrs)
	p.HTTPURL(map[string]string{"GATEWAY_PUBLIC_URL": c.PublicURL, "SLACK_API_URL": c.SlackAPIURL, "SLACK_AUTHORIZE_URL": c.SlackAuthorizeURL})
	if !strings.HasSuffix(c.SlackAPIURL, "/") {
		p.Add("SLACK_API_URL", "must end with a slash, e.g. https://slack.com/api/")
	}
	_, err := oauthstate.New(nil, 0, signed.ParseKeys(c.StateKey)...)
	p.Check("GATEWAY_STATE_KEY", err)
	_, err = installticket.NewSigner(nil, installticket.ParseKeys(c.InstallTicketKey)...)
	p.Check("INSTALL_TICKET_KEY", err)
	if _, err := verify.New(nil, 0, splitList(c.SigningSecret)...); err != nil {
		p.Add("SLACK_SIGNING_SECRET", "required")
	}
	p.Required("SLACK_CLIENT_ID", c.ClientID)
	p.Required("SLACK_CLIENT_SECRET", c.ClientSecret)
	if c.MaxBody < 4096 {
		p.Add("GATEWAY_MAX_BODY_BYTES", "must be at least 4096")
	}
	if c.AckBudget <= 0 || c.AckBudget >= 3*time.Second {
		p.Add("GATEWAY_ACK_BUDGET", "must be above 0 and below Slack's 3s")
	}
	if c.AnswerBudget < 0 || c.AnswerBudget > 2500*time.Millisecond {
		p.Add("GATEWAY_ANSWER_BUDGET", "must be above 0 and at most 2.5s, leaving time to say \"Searching…\" inside Slack's 3s")
	}
	for _, cmd := range splitList(c.QueryCommands) {
		if !strings.HasPrefix(cmd, "/") {
			p.Add("GATEWAY_QUERY_COMMANDS", "%q is not a slash command such as /zcrm", cmd)
		}
	}
	if _, err := c.responseURLs(); err != nil {
		p.Add("GATEWAY_RESPONSE_URL_BASES", "%v", err)
	}
	return p.Err()
}

// responseURLs is the response_url policy: the configured bases (Slack's by
// default) and SLACK_API_URL's origin.
func (c Config) responseURLs() (*responseurl.Policy, error) {
	bases := c.ResponseURLBases
	if len(bases) == 0 {
		bases = []string{responseurl.SlackBase}
	}
	if u, err := url.Parse(c.SlackAPIURL); err == nil && u.Host != "" {
		bases = append(slices.Clone(bases), u.Scheme+"://"+u.Host)
	}
	return responseurl.New(bases...)
}

// Run serves until ctx ends; a clean stop returns nil.
func Run(ctx context.Context, cfg Config, log *slog.Logger, reg prometheus.Registerer) error {
	return service.Run(ctx, service.Spec{
		Name: "gateway", Config: cfg, Log: log, Registry: reg, Vars: vars,
		Bus:   &service.Bus{Streams: []string{topology.StreamSlackIn}},
		HTTP:  []service.Listen{{Name: ListenerHTTP, Addr: cfg.Addr, Var: "GATEWAY_ADDR"}},
		Build: func(ctx context.Context, rt *service.Runtime) error { return build(ctx, cfg, rt) },
		Ready: func(b service.Bound) {
			if cfg.Ready != nil {
				cfg.Ready(Addrs{HTTP: b[ListenerHTTP], Ops: b[service.ListenerOps]})
			}
		},
	})
}

// ListenerHTTP names the listener for Slack and browsers in Config.Listeners.
const ListenerHTTP = "http"

// build wires the gateway on the bus.
func build(ctx context.Context, cfg Config, rt *service.Runtime) error {
	log, b := rt.Log(), rt.Bus
	verifier, err := verify.New(cfg.Now, verify.DefaultSkew, splitList(cfg.SigningSecret)...)
	if err != nil {
		return err
	}
	states, err := oauthstate.New(cfg.Now, oauthstate.DefaultTTL, signed.ParseKeys(cfg.StateKey)...)
	if err != nil {
		return err
	}
	tickets, err := installticket.NewSigner(cfg.Now, installticket.ParseKeys(cfg.InstallTicketKey)...)
	if err != nil {
		return err
	}
	nonces, err := install.EnsureNonceStore(ctx, b.JetStream(), cfg.NATSReplicas)
	if err != nil {
		return err
	}
	cc, err := rt.Dial("TEAMS_ADDR", cfg.TeamsAddr, identity.Teams)
	if err != nil {
		return err
	}

	replies, err := cfg.responseURLs()
	if err != nil {
		return err
	}
	followups, err := followup.New(log, followup.Options{Replies: replies, Registerer: rt.Registry()})
	if err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	answers := slackhttp.Options{
		ResponseURLs: replies, Followups: followups,
		MaxBody: int64(cfg.MaxBody), AckBudget: cfg.AckBudget, Now: cfg.Now, Registerer: rt.Registry(),
		Commands: splitList(cfg.QueryCommands), AnswerBudget: cfg.AnswerBudget,
	}
	if cfg.QueryAddr != "" {
		qc, err := rt.Dial("QUERY_ADDR", cfg.QueryAddr, identity.Query)
		if err != nil {
			return err
		}
		answers.Answerer = queryanswer.New(queryv1.NewQueryServiceClient(qc))
	}

	dir := teamdir.New(log)
	slackHandler, err := slackhttp.New(verifier, b.Publisher(), dir, log, answers)
	if err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	httpClient := &http.Client{Timeout: 15 * time.Second}
	installHandler := install.New(install.Config{
		ClientID: cfg.ClientID, AuthorizeURL: cfg.SlackAuthorizeURL, PublicURL: cfg.PublicURL,
	}, tickets, states, nonces, install.SlackOAuth{
		APIURL: cfg.SlackAPIURL, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, HTTP: httpClient,
	}, teamsv1.NewTeamRegistryServiceClient(cc), log, cfg.Now)

	mux := http.NewServeMux()
	slackHandler.Register(mux)
	installHandler.Register(mux)
	rt.HTTP(ListenerHTTP, &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second, // the OAuth callback calls Slack and the registry
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	})
	rt.Check(func(context.Context) error {
		if !dir.Synced() {
			return errors.New("team directory not loaded yet (is the team registry up?)")
		}
		return nil
	})
	rt.Part("followups", func(ctx context.Context) error { return followups.Run(ctx, b.Conn()) })
	rt.Part("team-directory", func(ctx context.Context) error {
		return orgaccess.Follow(ctx, b.JetStream(), dir, time.Second, log)
	})
	log.InfoContext(ctx, "gateway public URL", "public_url", cfg.PublicURL)
	return nil
}

// splitList splits a comma-separated variable, dropping empty entries.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
