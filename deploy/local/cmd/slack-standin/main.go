// Command slack-standin runs the Slack stand-in for local development: a fake
// Slack Web API, OAuth and response_url server the gateway can be pointed at
// (SLACK_API_URL=http://127.0.0.1:8090/api/).
//
// Configuration, flags overriding the environment:
//
//	-addr           SLACK_STANDIN_ADDR     listen address (default 127.0.0.1:8090)
//	-seed           SLACK_STANDIN_SEED     seed JSON file (default: the built-in seed)
//	-signing-secret SLACK_SIGNING_SECRET   signing secret (default: the stand-in's)
//	-client-id      SLACK_CLIENT_ID        OAuth client id (default: the stand-in's)
//	-client-secret  SLACK_CLIENT_SECRET    OAuth client secret (default: the stand-in's)
//	-rotation       SLACK_TOKEN_ROTATION   issue expiring, refreshable tokens (default false)
//	-app-url        SLACK_STANDIN_APP_URL  the app's base URL for /_standin/slash and /_standin/click (default: none)
//	-rate-limits    SLACK_STANDIN_RATE_LIMITS  Slack's rate limits (default true; false for load runs)
//
// A bot token for a workspace: curl -X POST 'http://127.0.0.1:8090/_standin/tokens?team=T0ACME0001'.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/crmslack/crmslack/libs/slackstandin"
)

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "slack-standin:", err)
		os.Exit(1)
	}
}

// config is the command's configuration.
type config struct {
	addr          string
	seedPath      string
	signingSecret string
	clientID      string
	clientSecret  string
	rotation      bool
	appURL        string
	noRateLimits  bool
}

func parseConfig(args []string, getenv func(string) string) (config, error) {
	rotation, err := envBool(getenv, "SLACK_TOKEN_ROTATION")
	if err != nil {
		return config{}, err
	}
	limits := true
	if getenv("SLACK_STANDIN_RATE_LIMITS") != "" {
		if limits, err = envBool(getenv, "SLACK_STANDIN_RATE_LIMITS"); err != nil {
			return config{}, err
		}
	}
	addr := getenv("SLACK_STANDIN_ADDR")
	if addr == "" {
		addr = "127.0.0.1:8090"
	}
	var c config
	fs := flag.NewFlagSet("slack-standin", flag.ContinueOnError)
	fs.StringVar(&c.addr, "addr", addr, "listen address (SLACK_STANDIN_ADDR)")
	fs.StringVar(&c.seedPath, "seed", getenv("SLACK_STANDIN_SEED"), "seed JSON file (SLACK_STANDIN_SEED); empty: built-in seed")
	fs.StringVar(&c.signingSecret, "signing-secret", getenv("SLACK_SIGNING_SECRET"), "signing secret (SLACK_SIGNING_SECRET)")
	fs.StringVar(&c.clientID, "client-id", getenv("SLACK_CLIENT_ID"), "OAuth client id (SLACK_CLIENT_ID)")
	fs.StringVar(&c.clientSecret, "client-secret", getenv("SLACK_CLIENT_SECRET"), "OAuth client secret (SLACK_CLIENT_SECRET)")
	fs.BoolVar(&c.rotation, "rotation", rotation, "token rotation (SLACK_TOKEN_ROTATION)")
	fs.StringVar(&c.appURL, "app-url", getenv("SLACK_STANDIN_APP_URL"), "the app's base URL, e.g. http://127.0.0.1:8080 (SLACK_STANDIN_APP_URL)")
	fs.BoolVar(&limits, "rate-limits", limits, "Slack's rate limits (SLACK_STANDIN_RATE_LIMITS); false for load runs")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	c.noRateLimits = !limits
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	return c, nil
}

func envBool(getenv func(string) string, name string) (bool, error) {
	v := getenv(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s=%q: not a boolean", name, v)
	}
	return b, nil
}

func run(args []string, getenv func(string) string, out io.Writer) error {
	c, err := parseConfig(args, getenv)
	if err != nil {
		return err
	}
	var seed *slackstandin.Seed
	if c.seedPath != "" {
		f, err := os.Open(c.seedPath)
		if err != nil {
			return fmt.Errorf("SLACK_STANDIN_SEED: %w", err)
		}
		seed, err = slackstandin.LoadSeed(f)
		_ = f.Close()
		if err != nil {
			return fmt.Errorf("SLACK_STANDIN_SEED %s: %w", c.seedPath, err)
		}
	}
	srv, err := slackstandin.New(slackstandin.Config{
		Seed: seed,
		App: slackstandin.AppConfig{
			ClientID:      c.clientID,
			ClientSecret:  c.clientSecret,
			SigningSecret: c.signingSecret,
			TokenRotation: c.rotation,
		},
		AppURL:     c.appURL,
		RateLimits: slackstandin.RateLimits{Disabled: c.noRateLimits},
		Logger:     slog.New(slog.NewTextHandler(out, nil)),
	})
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.Start(c.addr); err != nil {
		return err
	}
	fmt.Fprintf(out, "slack-standin listening on %s (Web API %s/api/)\n", srv.URL(), srv.URL())
	<-ctx.Done()
	srv.Close()
	fmt.Fprintln(out, "slack-standin stopped")
	return nil
}
