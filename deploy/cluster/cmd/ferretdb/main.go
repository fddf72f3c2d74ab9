// Command ferretdb runs FerretDB v1 on PostgreSQL as a process of its own:
// the MongoDB-wire server of the distributed mode (deploy/cluster). It is a
// small main over FerretDB's embeddable package because FerretDB's own
// cmd/ferretdb refuses to start unless built from its repository (it wants a
// version file its module does not ship).
//
//	FERRETDB_LISTEN_TLS        host:port of the TLS listener (required)
//	FERRETDB_TLS_CERT_FILE     its certificate (PEM)
//	FERRETDB_TLS_KEY_FILE      its key (PEM)
//	FERRETDB_TLS_CA_FILE       the CA clients' certificates must chain to
//	FERRETDB_POSTGRESQL_URL    the PostgreSQL database, without credentials:
//	                           each client's own (authMechanism=PLAIN) are used
//
// It stops on SIGINT or SIGTERM once its connections have ended.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg := &ferretdb.Config{
		Listener: ferretdb.ListenerConfig{
			TLS:         os.Getenv("FERRETDB_LISTEN_TLS"),
			TLSCertFile: os.Getenv("FERRETDB_TLS_CERT_FILE"),
			TLSKeyFile:  os.Getenv("FERRETDB_TLS_KEY_FILE"),
			TLSCAFile:   os.Getenv("FERRETDB_TLS_CA_FILE"),
		},
		Handler:       "postgresql",
		PostgreSQLURL: os.Getenv("FERRETDB_POSTGRESQL_URL"),
		Logger:        slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	}
	var missing []error
	for name, v := range map[string]string{
		"FERRETDB_LISTEN_TLS": cfg.Listener.TLS, "FERRETDB_TLS_CERT_FILE": cfg.Listener.TLSCertFile,
		"FERRETDB_TLS_KEY_FILE": cfg.Listener.TLSKeyFile, "FERRETDB_TLS_CA_FILE": cfg.Listener.TLSCAFile,
		"FERRETDB_POSTGRESQL_URL": cfg.PostgreSQLURL,
	} {
		if v == "" {
			missing = append(missing, fmt.Errorf("%s: required", name))
		}
	}
	if err := errors.Join(missing...); err != nil {
		return err
	}
	f, err := ferretdb.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(os.Stderr, "ferretdb listening on %s (TLS, client certificates required)\n", cfg.Listener.TLS)
	f.Run(ctx)
	return nil
}
