package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/crmslack/crmslack/deploy/local/demo"
	"github.com/crmslack/crmslack/deploy/local/sandbox"
	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/devpki"
	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/libs/lifecycle"
	"github.com/crmslack/crmslack/libs/natsauth"
	"github.com/crmslack/crmslack/libs/slackstandin"
)

// sandboxConfig is the sandbox pane's and the demo data's configuration.
type sandboxConfig struct {
	// addr is where the pane listens (SANDBOX_ADDR, default 127.0.0.1:8070).
	addr string
	// reminderLead is how far ahead the panel's activity's reminder falls
	// (SANDBOX_REMINDER_LEAD, default 1m).
	reminderLead time.Duration
	// demoData loads the demo data on the first run (LOCAL_DEMO_DATA,
	// default true).
	demoData bool
}

func sandboxConfigFromEnv(env *envconfig.Loader) sandboxConfig {
	return sandboxConfig{
		addr:         env.String("SANDBOX_ADDR", "127.0.0.1:8070"),
		reminderLead: env.Duration("SANDBOX_REMINDER_LEAD", time.Minute, 0, time.Hour),
		demoData:     env.Bool("LOCAL_DEMO_DATA", true),
	}
}

// crmBus publishes as a CRM org: its own NATS user, which may publish only
// the org's events, exactly as a CRM's connector does.
type crmBus struct{ b *bus.Bus }

func (c crmBus) Publish(ctx context.Context, subject string, ev bus.Event) error {
	_, err := c.b.Publish(ctx, subject, ev)
	return err
}

func connectCRM(ctx context.Context, natsURL string, pki *devpki.Dir, org string, log *slog.Logger) (*bus.Bus, error) {
	pw, err := pki.NATSPassword(natsauth.CRMUser(org))
	if err != nil {
		return nil, err
	}
	withTLS, err := pki.NATSTLS(natsauth.CRMUser(org))
	if err != nil {
		return nil, err
	}
	b, err := bus.Connect(ctx, bus.Config{URL: natsURL, Name: "crm-" + org + "-sandbox", Logger: log,
		NATSOptions: []nats.Option{nats.UserInfo(natsauth.CRMUser(org), pw), withTLS, nats.CustomInboxPrefix(natsauth.CRMInbox(org))}})
	if err != nil {
		return nil, fmt.Errorf("connecting as the CRM of org %s: %w", org, err)
	}
	return b, nil
}

// demoPart loads the demo data once the services have made their streams:
// on the first run of a data folder only (a marker file says it is done);
// a load cut short is done again whole, which publishes nothing twice.
func demoPart(dataDir, org string, pub demo.Publisher, log *slog.Logger, out io.Writer) lifecycle.Part {
	marker := filepath.Join(dataDir, "demo-loaded-"+org)
	return lifecycle.Part{Name: "demo", Run: func(ctx context.Context) error {
		if _, err := os.Stat(marker); err == nil {
			<-ctx.Done()
			return nil
		}
		wait := 200 * time.Millisecond
		for {
			n, err := demo.Load(ctx, pub, org, time.Now())
			if err == nil {
				if err := os.WriteFile(marker, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600); err != nil {
					return fmt.Errorf("demo data: %w", err)
				}
				fmt.Fprintf(out, "demo data loaded: %d events for org %s (%d accounts, %d contacts, %d leads, %d deals, %d users)\n",
					n, org, demo.NumAccounts, demo.NumContacts, demo.NumLeads, demo.NumDeals, len(demo.Users()))
				<-ctx.Done()
				return nil
			}
			if ctx.Err() != nil {
				return nil
			}
			// Until the services have made the CRM stream, nothing takes
			// the events; any other failure is said, and tried again.
			if !errors.Is(err, nats.ErrNoResponders) && !strings.Contains(err.Error(), "no responders") {
				log.Warn("demo data not loaded yet, trying again", "err", err, "in", wait)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
			wait = min(2*wait, 5*time.Second)
		}
	}}
}

// sandboxPart serves the pane.
func sandboxPart(cfg sandboxConfig, sa *slackstandin.Server, appURL, org, consoleURL string, pub demo.Publisher, log *slog.Logger) (lifecycle.Part, string, error) {
	srv, err := sandbox.New(sandbox.Config{Standin: sa, AppURL: appURL, Org: org, CRM: pub, ReminderLead: cfg.reminderLead,
		ConsoleURL: consoleURL, Logger: log.With("part", "sandbox")})
	if err != nil {
		return lifecycle.Part{}, "", err
	}
	lis, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return lifecycle.Part{}, "", fmt.Errorf("sandbox: SANDBOX_ADDR %s: %w", cfg.addr, err)
	}
	return lifecycle.Part{Name: "sandbox", Run: func(ctx context.Context) error { return srv.Run(ctx, lis) }},
		"http://" + lis.Addr().String(), nil
}

// consoleURL is the admin console's URL, for the pane to link to: its
// CONSOLE_PUBLIC_URL, else its listen address (services/console's default
// when unset).
func consoleURL(vars map[string]string) string {
	return firstSet(vars["CONSOLE_PUBLIC_URL"], "http://"+firstSet(vars["CONSOLE_ADDR"], "127.0.0.1:8082"))
}
