package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/libs/lifecycle"
	"github.com/crmslack/crmslack/libs/localmongo"
	"github.com/crmslack/crmslack/libs/localnats"
	"github.com/crmslack/crmslack/libs/logging"
	"github.com/crmslack/crmslack/libs/slackstandin"
)

// devClientID is the stand-in app's client id; it is not a secret.
const devClientID = "1234567890.1234567890"

// defaultGatewayURL is the gateway's GATEWAY_PUBLIC_URL when unset.
const defaultGatewayURL = "http://127.0.0.1:8080"

// endpoints is what the runner reports once everything is up.
type endpoints struct {
	NATS, Mongo, SlackAPI, Standin, PKI string
	// Sandbox is the sandbox pane's URL, when the stand-in runs.
	Sandbox  string
	Services []string
}

// run starts every part and blocks until ctx ends. environ is the process
// environment as KEY=VALUE; ready, if not nil, receives the endpoints once
// all parts are up (tests use it).
func run(ctx context.Context, environ []string, out io.Writer, ready chan<- endpoints) error {
	vars := envMap(environ)
	env := envconfig.FromMap(vars)
	logCfg := logging.ConfigFromEnv(env)
	if _, set := vars["LOG_FORMAT"]; !set {
		logCfg.JSON = false
	}
	dataDir := env.String("LOCAL_DATA_DIR", ".local")
	standinAddr := env.String("SLACK_STANDIN_ADDR", "127.0.0.1:8090")
	natsPort := env.Int("LOCAL_NATS_PORT", 4222, 0, 65535)
	crmOrgs := env.String("LOCAL_CRM_ORGS", defaultCRMOrgs)
	mongoAddr := env.String("LOCAL_MONGO_ADDR", "127.0.0.1:27017")
	sandboxCfg := sandboxConfigFromEnv(env)
	if err := env.Err(); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	log := logging.New(out, logCfg)
	var ep endpoints
	secrets, err := devSecrets(dataDir)
	if err != nil {
		return err
	}
	// The product's own keys are generated for the local stack; Slack's
	// secrets only when Slack is the stand-in, since real Slack has its own.
	vars = withDefaults(vars, pick(secrets, "GATEWAY_STATE_KEY", "INSTALL_TICKET_KEY", "TEAMS_TOKEN_KEYS", "SHARE_BUTTON_KEY", "REMINDERS_BUTTON_KEY"))

	// Trust: a development CA, a certificate per service (and one for the
	// CRM, which crmctl uses), CRM signing keys and NATS users, made on the
	// first run.
	orgs := splitOrgs(crmOrgs)
	pki, err := devPKI(dataDir, orgs)
	if err != nil {
		return err
	}

	// Embedded infrastructure, each only when no real one is configured.
	var stops []func()
	defer func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}()
	embeddedNATS := false
	if url, ok := vars["NATS_URL"]; ok && url != "" {
		ep.NATS = url
	} else {
		embeddedNATS = true
		// A NATS user for every org with a signing key, so crmctl can
		// publish as it (keys made since by crmctl call count from the
		// next start).
		withKeys, err := pki.CRMOrgs()
		if err != nil {
			return err
		}
		users, err := pki.NATSUsers(withKeys...)
		if err != nil {
			return err
		}
		serverTLS, err := pki.NATSServerTLS()
		if err != nil {
			return err
		}
		ns, err := localnats.Start(localnats.Options{Port: natsPort, StoreDir: filepath.Join(dataDir, "nats"), Users: users, TLS: serverTLS, Logger: log.With("part", "nats")})
		if err != nil {
			return fmt.Errorf("starting embedded NATS: %w", err)
		}
		stops = append(stops, ns.Shutdown)
		ep.NATS = ns.ClientURL()
	}
	if uri, ok := vars["MONGODB_URI"]; ok && uri != "" {
		ep.Mongo = uri
	} else {
		ms, err := localmongo.Start(ctx, localmongo.Options{Dir: filepath.Join(dataDir, "mongo"), Addr: mongoAddr, Logger: log.With("part", "mongo")})
		if err != nil {
			return fmt.Errorf("starting embedded FerretDB: %w", err)
		}
		stops = append(stops, func() {
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = ms.Close(cctx)
		})
		ep.Mongo = ms.URI()
	}
	var sa *slackstandin.Server
	if api, ok := vars["SLACK_API_URL"]; ok && api != "" {
		ep.SlackAPI = api
	} else {
		vars = withDefaults(vars, pick(secrets, "SLACK_SIGNING_SECRET", "SLACK_CLIENT_SECRET"))
		sa, err = startStandin(vars, standinAddr, dataDir, log)
		if err != nil {
			return err
		}
		stops = append(stops, sa.Close)
		ep.Standin = sa.URL()
		ep.SlackAPI = sa.URL() + "/api/"
		vars = withDefaults(vars, map[string]string{
			"SLACK_AUTHORIZE_URL": sa.URL() + "/oauth/v2/authorize",
			"SLACK_CLIENT_ID":     devClientID,
		})
	}
	vars = withDefaults(vars, map[string]string{
		"CONSOLE_DEV_CRM_KEYS": consoleDevKeys(pki, orgs),
		"NATS_URL":             ep.NATS,
		"MONGODB_URI":          ep.Mongo,
		"SLACK_API_URL":        ep.SlackAPI,
	})

	// Services: each gets its configuration from the same environment, with
	// the embedded parts' addresses and its own identity filled in.
	var parts []lifecycle.Part
	for _, s := range services {
		files, err := pki.Trust(s.name)
		if err != nil {
			return err
		}
		svcEnv := envconfig.FromMap(withTrust(vars, files))
		runFn, desc, err := s.build(svcEnv)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		if err := svcEnv.Err(); err != nil {
			return fmt.Errorf("%s configuration: %w", s.name, err)
		}
		// Each service its own registry, served on its own /metrics, as when
		// it runs alone.
		reg := lifecycle.NewRegistry()
		parts = append(parts, lifecycle.Part{Name: s.name, Run: func(ctx context.Context) error {
			return runFn(ctx, log, reg)
		}})
		ep.Services = append(ep.Services, fmt.Sprintf("%-10s %s", s.name, desc))
	}
	ep.PKI = pki.Path()

	// The sandbox pane and the demo data play Slack and the CRM: only with
	// the stand-in, and the embedded NATS whose CRM users the PKI holds.
	if sa != nil && embeddedNATS && len(orgs) > 0 {
		crm, err := connectCRM(ctx, ep.NATS, pki, orgs[0], log.With("part", "crm"))
		if err != nil {
			return err
		}
		stops = append(stops, func() { _ = crm.Close() })
		pub := crmBus{crm}
		if sandboxCfg.demoData {
			parts = append(parts, demoPart(dataDir, orgs[0], pub, log.With("part", "demo"), out))
		}
		part, url, err := sandboxPart(sandboxCfg, sa, firstSet(vars["GATEWAY_PUBLIC_URL"], defaultGatewayURL), orgs[0], consoleURL(vars), pub, log)
		if err != nil {
			return err
		}
		parts = append(parts, part)
		ep.Sandbox = url
	}

	report(out, ep)
	if ready != nil {
		ready <- ep
	}
	if err := lifecycle.Run(ctx, log, parts...); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	// The infrastructure serves until Ctrl-C even when no service runs.
	<-ctx.Done()
	fmt.Fprintln(out, "stopped")
	return nil
}

// standinMaxMessages bounds what the stand-in records, so a long local run
// does not grow without limit.
const standinMaxMessages = 10_000

func startStandin(vars map[string]string, addr, dataDir string, log *slog.Logger) (*slackstandin.Server, error) {
	cfg := slackstandin.Config{
		App: slackstandin.AppConfig{
			ClientID:      firstSet(vars["SLACK_CLIENT_ID"], devClientID),
			ClientSecret:  vars["SLACK_CLIENT_SECRET"],
			SigningSecret: vars["SLACK_SIGNING_SECRET"],
		},
		// /_standin/slash and /_standin/click send to the gateway; it starts
		// after the stand-in, which is fine: nothing is sent before then.
		AppURL: firstSet(vars["GATEWAY_PUBLIC_URL"], defaultGatewayURL),
		Logger: log.With("part", "slack-standin"),
		// Its workspaces, tokens and messages survive a restart, as
		// Slack's would: the registry's stored tokens keep working.
		StateFile:   filepath.Join(dataDir, "slack-standin.json"),
		MaxMessages: standinMaxMessages,
	}
	if path := vars["SLACK_STANDIN_SEED"]; path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("SLACK_STANDIN_SEED: %w", err)
		}
		defer f.Close()
		seed, err := slackstandin.LoadSeed(f)
		if err != nil {
			return nil, fmt.Errorf("SLACK_STANDIN_SEED: %w", err)
		}
		cfg.Seed = seed
	}
	sa, err := slackstandin.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("Slack stand-in: %w", err)
	}
	if err := sa.Start(addr); err != nil {
		return nil, fmt.Errorf("starting the Slack stand-in on %s: %w", addr, err)
	}
	return sa, nil
}

func report(w io.Writer, ep endpoints) {
	var b strings.Builder
	b.WriteString("crmslack is up\n")
	fmt.Fprintf(&b, "  %-10s %s\n", "nats", ep.NATS)
	fmt.Fprintf(&b, "  %-10s %s\n", "mongodb", redactURI(ep.Mongo))
	if ep.Standin != "" {
		fmt.Fprintf(&b, "  %-10s %s (Slack Web API at %s, messages at %s/_standin/messages)\n", "slack", ep.Standin, ep.SlackAPI, ep.Standin)
		fmt.Fprintf(&b, "  %-10s go run ./deploy/crmctl slack zcrm -standin %s -user bob@acme.example -channel sales help\n", "try", ep.Standin)
	} else {
		fmt.Fprintf(&b, "  %-10s %s\n", "slack", ep.SlackAPI)
	}
	for _, s := range ep.Services {
		fmt.Fprintf(&b, "  %s\n", s)
	}
	if ep.Sandbox != "" {
		fmt.Fprintf(&b, "  %-10s %s (the Slack pane: workspaces, channels, /zcrm, buttons, and a CRM panel of demo events)\n", "sandbox", ep.Sandbox)
	}
	fmt.Fprintf(&b, "  %-10s %s (development CA, certificates, CRM keys; crmctl call uses them)\n", "trust", ep.PKI)
	b.WriteString("Ctrl-C stops everything.\n")
	_, _ = io.WriteString(w, b.String())
}

func envMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// withDefaults returns vars with every unset or empty key of defs filled in.
func withDefaults(vars, defs map[string]string) map[string]string {
	out := make(map[string]string, len(vars)+len(defs))
	for k, v := range defs {
		out[k] = v
	}
	for k, v := range vars {
		if v != "" || out[k] == "" {
			out[k] = v
		}
	}
	return out
}

func pick(m map[string]string, keys ...string) map[string]string {
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		out[k] = m[k]
	}
	return out
}

func firstSet(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func redactURI(uri string) string {
	if i := strings.Index(uri, "@"); i > 0 {
		if j := strings.Index(uri, "://"); j > 0 && j < i {
			return uri[:j+3] + "***" + uri[i:]
		}
	}
	return uri
}
