// Package console is the admin web console: server-rendered pages where a
// CRM admin connects Slack workspaces, enables the integration, edits
// workflow actions, the SalesSignals matrix, their reminder preferences and
// reads the delivery audit. A session is a CRM credential (libs/crmauth),
// verified against the org's key; every action is a call of the product's
// public gRPC APIs carrying that credential, as crmctl's are. Run is its
// in-process entry point, used by cmd/console and the local runner.
package console

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/libs/identity"
	"github.com/crmslack/crmslack/libs/service"
	"github.com/crmslack/crmslack/libs/trust"
	deliveryv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/delivery/v1"
	remindersv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/reminders/v1"
	sharingv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/sharing/v1"
	signalsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/signals/v1"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"
	workflowsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/workflows/v1"

	"github.com/crmslack/crmslack/services/console/internal/session"
	"github.com/crmslack/crmslack/services/console/internal/web"
)

// Config is the console's configuration. Each field names its variable and
// default.
type Config struct {
	// Files are the service's trust files (libs/trust): its mutual TLS
	// identity (spiffe://crmslack/console) and CRM_KEYS_FILE, which verifies
	// the credential of every session. Required.
	trust.Files
	// Addr is CONSOLE_ADDR, the HTTP listener for browsers. Default
	// 127.0.0.1:8082.
	Addr string
	// PublicURL is CONSOLE_PUBLIC_URL, how browsers reach Addr; cookies are
	// Secure when it is https. Default http://127.0.0.1:8082.
	PublicURL string
	// OpsAddr is CONSOLE_OPS_ADDR, serving /healthz, /readyz and /metrics.
	// Default 127.0.0.1:9208.
	OpsAddr string
	// TeamsAddr is TEAMS_ADDR, the team registry. Default 127.0.0.1:9101.
	TeamsAddr string
	// WorkflowsAddr is WORKFLOWS_ADDR. Default 127.0.0.1:9105.
	WorkflowsAddr string
	// SignalsAddr is SIGNALS_ADDR. Default 127.0.0.1:9107.
	SignalsAddr string
	// RemindersAddr is REMINDERS_ADDR. Default 127.0.0.1:9106.
	RemindersAddr string
	// DeliveryAddr is DELIVERY_ADDR, the egress's audit API. Default
	// 127.0.0.1:9102.
	DeliveryAddr string
	// SharingAddr is SHARING_ADDR: the channels and people of a team, to
	// pick workflow targets from. Default 127.0.0.1:9104.
	SharingAddr string
	// DevCRMKeys is CONSOLE_DEV_CRM_KEYS: org=path-to-signing-key pairs,
	// comma-separated. When set, /login also offers a development sign-in
	// that signs a short-lived credential with that org's CRM key, as crmctl
	// does; the local runner sets it to its development keys. Empty (the
	// default): only credentials the CRM signed are accepted.
	DevCRMKeys string

	// Ready, not from the environment, is called once the console serves,
	// with the addresses it bound.
	Ready func(Addrs)
	// Listeners, not from the environment, are listeners to serve on instead
	// of binding Addr and OpsAddr, by name ("http", "ops").
	Listeners service.Listeners
	// Now, not from the environment, is the clock. Default time.Now.
	Now func() time.Time
}

// Addrs are the bound listen addresses.
type Addrs struct {
	HTTP, Ops string
}

// ListenerHTTP names the browsers' listener in Config.Listeners.
const ListenerHTTP = "http"

// ConfigFromEnv reads the configuration; problems are recorded in l.
func ConfigFromEnv(l *envconfig.Loader) Config {
	return Config{
		Files:         trust.FromEnv(l),
		Addr:          l.String("CONSOLE_ADDR", "127.0.0.1:8082"),
		PublicURL:     l.URL("CONSOLE_PUBLIC_URL", "http://127.0.0.1:8082", "http", "https"),
		OpsAddr:       l.String("CONSOLE_OPS_ADDR", "127.0.0.1:9208"),
		TeamsAddr:     l.String("TEAMS_ADDR", "127.0.0.1:9101"),
		WorkflowsAddr: l.String("WORKFLOWS_ADDR", "127.0.0.1:9105"),
		SignalsAddr:   l.String("SIGNALS_ADDR", "127.0.0.1:9107"),
		RemindersAddr: l.String("REMINDERS_ADDR", "127.0.0.1:9106"),
		DeliveryAddr:  l.String("DELIVERY_ADDR", "127.0.0.1:9102"),
		SharingAddr:   l.String("SHARING_ADDR", "127.0.0.1:9104"),
		DevCRMKeys:    l.String("CONSOLE_DEV_CRM_KEYS", ""),
	}
}

// Validate reports every invalid field by its variable name.
func (c Config) Validate() error {
	var p envconfig.Problems
	p.HostPort(map[string]string{
		"CONSOLE_ADDR": c.Addr, "CONSOLE_OPS_ADDR": c.OpsAddr, "TEAMS_ADDR": c.TeamsAddr, "WORKFLOWS_ADDR": c.WorkflowsAddr,
		"SIGNALS_ADDR": c.SignalsAddr, "REMINDERS_ADDR": c.RemindersAddr, "DELIVERY_ADDR": c.DeliveryAddr, "SHARING_ADDR": c.SharingAddr,
	})
	p.HTTPURL(map[string]string{"CONSOLE_PUBLIC_URL": c.PublicURL})
	// The console serves no gRPC, so the skeleton does not ask for the key
	// registry; every session needs it.
	p.Required(trust.VarCRMKeys, c.CRMKeysFile)
	_, err := session.ParseDevKeys(c.DevCRMKeys)
	p.Check("CONSOLE_DEV_CRM_KEYS", err)
	return p.Err()
}

// Run serves until ctx ends; a clean stop returns nil.
func Run(ctx context.Context, cfg Config, log *slog.Logger, reg prometheus.Registerer) error {
	return service.Run(ctx, service.Spec{
		Name: "console", Config: cfg, Log: log, Registry: reg,
		HTTP:      []service.Listen{{Name: ListenerHTTP, Addr: cfg.Addr, Var: "CONSOLE_ADDR"}},
		Ops:       service.Listen{Addr: cfg.OpsAddr, Var: "CONSOLE_OPS_ADDR"},
		Listeners: cfg.Listeners,
		Build:     func(ctx context.Context, rt *service.Runtime) error { return build(ctx, cfg, rt) },
		Ready: func(b service.Bound) {
			if cfg.Ready != nil {
				cfg.Ready(Addrs{HTTP: b[ListenerHTTP], Ops: b[service.ListenerOps]})
			}
		},
	})
}

func build(ctx context.Context, cfg Config, rt *service.Runtime) error {
	log := rt.Log()
	keys, err := cfg.CRMKeys()
	if err != nil {
		return err
	}
	devKeys, err := session.ParseDevKeys(cfg.DevCRMKeys)
	if err != nil {
		return fmt.Errorf("CONSOLE_DEV_CRM_KEYS: %w", err)
	}
	pub, _ := url.Parse(cfg.PublicURL)
	sessions := session.New(keys, session.Options{Secure: pub != nil && pub.Scheme == "https", Now: cfg.Now, Dev: devKeys})

	// Every connection sends the session's credential with each call.
	conns := map[string]session.Conn{}
	for _, d := range []struct{ variable, target, service string }{
		{"TEAMS_ADDR", cfg.TeamsAddr, identity.Teams}, {"WORKFLOWS_ADDR", cfg.WorkflowsAddr, identity.Workflows},
		{"SIGNALS_ADDR", cfg.SignalsAddr, identity.Signals}, {"REMINDERS_ADDR", cfg.RemindersAddr, identity.Reminders},
		{"DELIVERY_ADDR", cfg.DeliveryAddr, identity.Delivery}, {"SHARING_ADDR", cfg.SharingAddr, identity.Sharing},
	} {
		cc, err := rt.Dial(d.variable, d.target, d.service)
		if err != nil {
			return err
		}
		conns[d.variable] = session.Conn{CC: cc}
	}
	h, err := web.New(web.Deps{
		Sessions:    sessions,
		Teams:       teamsv1.NewTeamRegistryServiceClient(conns["TEAMS_ADDR"]),
		Workflows:   workflowsv1.NewWorkflowActionsServiceClient(conns["WORKFLOWS_ADDR"]),
		Signals:     signalsv1.NewSalesSignalsSettingsServiceClient(conns["SIGNALS_ADDR"]),
		Reminders:   remindersv1.NewReminderPreferencesServiceClient(conns["REMINDERS_ADDR"]),
		Delivery:    deliveryv1.NewDeliveryAuditServiceClient(conns["DELIVERY_ADDR"]),
		DeadLetters: deliveryv1.NewDeadLetterServiceClient(conns["DELIVERY_ADDR"]),
		Sharing:     sharingv1.NewSharingServiceClient(conns["SHARING_ADDR"]),
		Log:         log,
		Registerer:  rt.Registry(),
	})
	if err != nil {
		return err
	}
	rt.HTTP(ListenerHTTP, &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	})
	log.InfoContext(ctx, "console URL", "url", strings.TrimSuffix(cfg.PublicURL, "/")+"/", "dev_login", len(devKeys) > 0)
	return nil
}
