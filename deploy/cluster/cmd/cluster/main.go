// Command cluster runs crmslack's distributed mode on this machine (`make
// cluster`): a three-node NATS cluster, FerretDB on PostgreSQL, the Slack
// stand-in and two replicas of every service, each its own process, until
// Ctrl-C stops them all. See package cluster and docs/operations.md.
//
//	CLUSTER_DIR        data folder (default .local/cluster)
//	CLUSTER_BIN        where the binaries are built (default .bin/cluster)
//	CLUSTER_REPLICAS   replicas of each service (default 2)
//	CLUSTER_CRM_ORGS   CRM orgs, comma-separated (default o1)
//	LOG_LEVEL          the services' log level (default info)
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/crmslack/crmslack/deploy/cluster"
	"github.com/crmslack/crmslack/libs/foreground"
)

func main() {
	restore := foreground.Take()
	defer restore()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		restore()
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	get := func(k, def string) string {
		if v := os.Getenv(k); v != "" {
			return v
		}
		return def
	}
	replicas, err := strconv.Atoi(get("CLUSTER_REPLICAS", strconv.Itoa(cluster.DefaultReplicas)))
	if err != nil || replicas < 1 {
		return fmt.Errorf("CLUSTER_REPLICAS=%q: want a number of at least 1", os.Getenv("CLUSTER_REPLICAS"))
	}
	bin := get("CLUSTER_BIN", ".bin/cluster")
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	fmt.Println("building the binaries into", bin, "…")
	if err := cluster.Build(ctx, root, bin); err != nil {
		return err
	}
	c, err := cluster.Start(ctx, cluster.Options{
		Dir: get("CLUSTER_DIR", ".local/cluster"), Bin: bin, Replicas: replicas,
		CRMOrgs: strings.Split(get("CLUSTER_CRM_ORGS", "o1"), ","),
		Env:     map[string]string{"LOG_LEVEL": get("LOG_LEVEL", "info")},
		Out:     os.Stdout,
	})
	if err != nil {
		return err
	}
	c.Report(os.Stdout)
	<-ctx.Done()
	fmt.Println("stopping…")
	if err := c.Stop(); err != nil {
		return err
	}
	fmt.Println("stopped")
	return nil
}
