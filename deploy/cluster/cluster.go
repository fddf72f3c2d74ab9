package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/crmslack/crmslack/libs/identity"

	"github.com/crmslack/crmslack/libs/devpki"
	"github.com/crmslack/crmslack/libs/natsauth"
)

// Defaults of [Options].
const (
	DefaultReplicas  = 2
	DefaultNATSNodes = 3
	// standinClientID is the stand-in app's OAuth client id (not a secret).
	standinClientID = "1234567890.1234567890"
	readyTimeout    = 2 * time.Minute
	stopGrace       = 20 * time.Second
)

// Options configures [Start]. Dir and Bin are required.
type Options struct {
	// Dir keeps the cluster's data: trust material, secrets, PostgreSQL,
	// the NATS stores. A second start on the same Dir finds it all.
	Dir string
	// Bin holds the binaries [Build] made.
	Bin string
	// Replicas of each service. Default DefaultReplicas.
	Replicas int
	// NATSNodes is the size of the NATS cluster; streams are replicated on
	// min(3, NATSNodes). Default DefaultNATSNodes.
	NATSNodes int
	// CRMOrgs are the CRM orgs with a NATS user and a signing key.
	// Default ["o1"].
	CRMOrgs []string
	// Env is added to every service's environment (tuning such as
	// DELIVERY_CHANNEL_RATE, LOG_LEVEL); it may not set what the cluster
	// sets itself.
	Env map[string]string
	// StandinEnv is added to the Slack stand-in's.
	StandinEnv map[string]string
	// Out receives every process's output, each line behind its name.
	// Nil discards it.
	Out io.Writer
	// PGBin is PostgreSQL's bin directory. Default: see pgBin.
	PGBin string
}

// Replica is one running replica of a service.
type Replica struct {
	Name   string // e.g. delivery-2
	Listen string // its API address (gRPC, or the gateway's HTTP)
	Ops    string // its /readyz and /metrics
	p      *proc
}

// Cluster is a running distributed mode.
type Cluster struct {
	opts      Options
	pki       *devpki.Dir
	nodes     []natsNode
	natsProcs []*proc
	infra     []*proc // postgres, ferretdb, the stand-in: stopped last, in reverse
	mongoAddr string
	standin   string
	balancers map[string]*balancer
	mu        sync.Mutex
	replicas  map[string][]*Replica
}

// Start brings up every part and returns once every replica is ready. On
// an error, what was started is stopped again. A part that exits before it
// is ready (most often: a port picked free was taken by another process
// before the part bound it) makes it start everything once more, on new
// ports and the same data.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	c, err := start(ctx, opts)
	if errors.Is(err, errExited) {
		fmt.Fprintf(orDiscard(opts.Out), "cluster: %v; starting again\n", err)
		c, err = start(ctx, opts)
	}
	return c, err
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

func start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	if opts.Dir == "" || opts.Bin == "" {
		return nil, errors.New("cluster: Options.Dir and Options.Bin are required")
	}
	if opts.Replicas == 0 {
		opts.Replicas = DefaultReplicas
	}
	if opts.NATSNodes == 0 {
		opts.NATSNodes = DefaultNATSNodes
	}
	if len(opts.CRMOrgs) == 0 {
		opts.CRMOrgs = []string{"o1"}
	}
	opts.Out = orDiscard(opts.Out)
	if opts.Dir, err = filepath.Abs(opts.Dir); err != nil {
		return nil, err
	}
	c := &Cluster{opts: opts, balancers: map[string]*balancer{}, replicas: map[string][]*Replica{}}
	defer func() {
		if err != nil {
			_ = c.Stop()
		}
	}()
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, err
	}
	sec, err := secrets(opts.Dir)
	if err != nil {
		return nil, err
	}
	if c.pki, err = devpki.Open(filepath.Join(opts.Dir, "pki")); err != nil {
		return nil, err
	}
	if _, err := c.pki.Trust(identity.CRM); err != nil {
		return nil, err
	}
	if err := c.pki.EnsureCRMOrgs(opts.CRMOrgs...); err != nil {
		return nil, err
	}

	ports := newPorts()
	pgAddr, mongoAddr, standinAddr := ports.next(), ports.next(), ports.next()
	for i := range opts.NATSNodes {
		name := "nats-" + strconv.Itoa(i+1)
		c.nodes = append(c.nodes, natsNode{name: name, client: ports.next(), route: ports.next(), monitor: ports.next(),
			conf: filepath.Join(opts.Dir, "nats", name+".conf"), store: filepath.Join(opts.Dir, "nats", name)})
	}
	type addrs struct{ listen, ops string }
	replicaAddrs := map[string][]addrs{}
	for _, s := range services {
		for range opts.Replicas {
			replicaAddrs[s.name] = append(replicaAddrs[s.name], addrs{ports.next(), ports.next()})
		}
	}
	for _, s := range services {
		var backends []string
		for _, a := range replicaAddrs[s.name] {
			backends = append(backends, a.listen)
		}
		c.balancers[s.name] = newBalancer(ports.hold(), backends)
	}
	ports.release()

	// NATS: the nodes start together (each waits for its routes).
	natsTLS, err := c.pki.Trust("nats")
	if err != nil {
		return nil, err
	}
	passwords := map[string]string{}
	for _, u := range append(slices.Clone(natsauth.Services), crmUsers(opts.CRMOrgs)...) {
		if passwords[u], err = c.pki.NATSPassword(u); err != nil {
			return nil, err
		}
	}
	for _, n := range c.nodes {
		p, err := startNATS(filepath.Join(opts.Bin, "nats-server"), n, c.nodes, natsTLS, opts.CRMOrgs, passwords, opts.Out)
		if err != nil {
			return nil, err
		}
		c.natsProcs = append(c.natsProcs, p)
	}

	// PostgreSQL, then FerretDB on it, while NATS forms its cluster.
	bin := opts.PGBin
	if bin == "" {
		if bin, err = pgBin(nil); err != nil {
			return nil, err
		}
	}
	pg, err := startPostgres(ctx, bin, filepath.Join(opts.Dir, "pg"), pgAddr, sec[secPostgres], opts.Out)
	if err != nil {
		return nil, err
	}
	c.infra = append(c.infra, pg)
	mongoTLS, err := c.pki.Trust("mongo")
	if err != nil {
		return nil, err
	}
	ferret, err := startProc(procSpec{name: "ferretdb", path: filepath.Join(opts.Bin, "ferretdb"), dir: opts.Dir, env: environ(map[string]string{
		"FERRETDB_LISTEN_TLS": mongoAddr, "FERRETDB_TLS_CERT_FILE": mongoTLS.TLSCertFile, "FERRETDB_TLS_KEY_FILE": mongoTLS.TLSKeyFile,
		"FERRETDB_TLS_CA_FILE":    mongoTLS.TLSCAFile,
		"FERRETDB_POSTGRESQL_URL": "postgres://" + pgAddr + "/" + pgDatabase + "?sslmode=disable",
	})}, opts.Out)
	if err != nil {
		return nil, err
	}
	c.infra = append(c.infra, ferret)
	if err := ferret.waitFor(ctx, "listening on "+mongoAddr, time.Minute, func() bool { return dialable(mongoAddr) }); err != nil {
		return nil, err
	}
	c.mongoAddr = mongoAddr

	// The Slack stand-in; its slash commands and clicks go to the gateways'
	// balancer, as Slack's go to the load balancer.
	gatewayURL := "http://" + c.balancers[identity.Gateway].addr()
	standinEnv := map[string]string{
		"SLACK_STANDIN_ADDR": standinAddr, "SLACK_SIGNING_SECRET": sec[secSigning], "SLACK_CLIENT_ID": standinClientID,
		"SLACK_CLIENT_SECRET": sec[secClient], "SLACK_STANDIN_APP_URL": gatewayURL,
	}
	for k, v := range opts.StandinEnv {
		standinEnv[k] = v
	}
	standin, err := startProc(procSpec{name: "slack-standin", path: filepath.Join(opts.Bin, "slack-standin"), dir: opts.Dir, env: environ(standinEnv)}, opts.Out)
	if err != nil {
		return nil, err
	}
	c.infra = append(c.infra, standin)
	if err := standin.waitFor(ctx, "listening on "+standinAddr, time.Minute, func() bool { return dialable(standinAddr) }); err != nil {
		return nil, err
	}
	c.standin = "http://" + standinAddr

	if err := natsClusterReady(ctx, c.natsProcs, c.nodes, readyTimeout); err != nil {
		return nil, err
	}

	// The services: teams first (it makes the org_access bucket), then the
	// rest at once.
	common := map[string]string{
		"NATS_URL":            natsURLs(c.nodes),
		"NATS_REPLICAS":       strconv.Itoa(min(3, opts.NATSNodes)),
		"TEAMS_ADDR":          c.balancers[identity.Teams].addr(),
		"QUERY_ADDR":          c.balancers[identity.Query].addr(),
		"WORKFLOWS_ADDR":      c.balancers[identity.Workflows].addr(),
		"SIGNALS_ADDR":        c.balancers[identity.Signals].addr(),
		"REMINDERS_ADDR":      c.balancers[identity.Reminders].addr(),
		"DELIVERY_ADDR":       c.balancers[identity.Delivery].addr(),
		"SHARING_ADDR":        c.balancers[identity.Sharing].addr(),
		"CONSOLE_PUBLIC_URL":  "http://" + c.balancers["console"].addr(),
		"SLACK_API_URL":       c.standin + "/api/",
		"SLACK_AUTHORIZE_URL": c.standin + "/oauth/v2/authorize",
		"SLACK_CLIENT_ID":     standinClientID,
		"GATEWAY_PUBLIC_URL":  gatewayURL,
	}
	for k, v := range opts.Env {
		if _, own := common[k]; own {
			return nil, fmt.Errorf("cluster: Options.Env may not set %s (the cluster sets it)", k)
		}
		common[k] = v
	}
	start := func(s service, i int) error {
		files, err := c.pki.Trust(s.name)
		if err != nil {
			return err
		}
		a := replicaAddrs[s.name][i]
		env := map[string]string{s.listen: a.listen, s.ops: a.ops}
		for k, v := range common {
			env[k] = v
		}
		for _, kv := range files.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		if s.mongo {
			env["MONGODB_URI"] = mongoURI(c.mongoAddr, sec[secPostgres], files.TLSCAFile, files.TLSCertFile, files.TLSKeyFile)
		}
		for _, k := range s.secrets {
			env[k] = sec[k]
		}
		r := &Replica{Name: s.name + "-" + strconv.Itoa(i+1), Listen: a.listen, Ops: a.ops}
		if r.p, err = startProc(procSpec{name: r.Name, path: filepath.Join(opts.Bin, s.name), dir: opts.Dir, env: environ(env)}, opts.Out); err != nil {
			return err
		}
		c.mu.Lock()
		c.replicas[s.name] = append(c.replicas[s.name], r)
		c.mu.Unlock()
		return nil
	}
	// The first replica of each service alone, in order: a JetStream
	// cluster does not answer the second of two simultaneous creations of
	// one stream (nats-io/nats-server#3677), and every service ensures the
	// shared streams at start. The others then start at once: the streams
	// exist.
	for _, s := range services {
		if err := start(s, 0); err != nil {
			return nil, err
		}
		if err := c.replicas[s.name][0].p.waitFor(ctx, "ready", readyTimeout, func() bool { return ready(c.replicas[s.name][0].Ops) }); err != nil {
			return nil, err
		}
	}
	for i := 1; i < opts.Replicas; i++ {
		for _, s := range services {
			if err := start(s, i); err != nil {
				return nil, err
			}
		}
	}
	for _, s := range services {
		if err := c.waitReady(ctx, s.name); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func crmUsers(orgs []string) []string {
	out := make([]string, len(orgs))
	for i, o := range orgs {
		out[i] = natsauth.CRMUser(o)
	}
	return out
}

// waitReady waits for every replica of service to answer /readyz.
func (c *Cluster) waitReady(ctx context.Context, service string) error {
	for _, r := range c.Replicas(service) {
		if err := r.p.waitFor(ctx, "ready", readyTimeout, func() bool { return ready(r.Ops) }); err != nil {
			return err
		}
	}
	return nil
}

func ready(ops string) bool {
	cl := http.Client{Timeout: time.Second}
	resp, err := cl.Get("http://" + ops + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Replicas are service's replicas.
func (c *Cluster) Replicas(service string) []*Replica {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.replicas[service])
}

// Kill SIGKILLs replica r, as a crash would.
func (r *Replica) Kill() { r.p.kill() }

// Alive says whether the replica's process runs.
func (r *Replica) Alive() bool { return !r.p.exited() }

// KillNATS SIGKILLs NATS node i (0-based).
func (c *Cluster) KillNATS(i int) { c.natsProcs[i].kill() }

// Addr is where service is reached: the balancer in front of its replicas.
func (c *Cluster) Addr(service string) string { return c.balancers[service].addr() }

// NATSURL is every node's client URL, comma-separated.
func (c *Cluster) NATSURL() string { return natsURLs(c.nodes) }

// StandinURL is the Slack stand-in's base URL.
func (c *Cluster) StandinURL() string { return c.standin }

// PKI is the cluster's development trust material.
func (c *Cluster) PKI() *devpki.Dir { return c.pki }

// Report writes where each part listens.
func (c *Cluster) Report(w io.Writer) {
	var b strings.Builder
	b.WriteString("crmslack cluster is up (every part its own process; security on)\n")
	for i, n := range c.nodes {
		fmt.Fprintf(&b, "  %-12s nats://%s (routes %s over mutual TLS, monitoring http://%s) pid %d\n", n.name, n.client, n.route, n.monitor, c.natsProcs[i].pid())
	}
	fmt.Fprintf(&b, "  %-12s %s (TLS, client certificates; PostgreSQL under %s) pid %d\n", "mongodb", c.mongoAddr, filepath.Join(c.opts.Dir, "pg"), c.infra[1].pid())
	fmt.Fprintf(&b, "  %-12s %s (Web API %s/api/, messages %s/_standin/messages)\n", "slack", c.standin, c.standin, c.standin)
	for _, s := range services {
		what := "gRPC"
		switch s.name {
		case identity.Gateway:
			what = "HTTP, Slack's endpoints /slack/…"
		case "console":
			what = "HTTP, the admin console"
		}
		fmt.Fprintf(&b, "  %-12s %s (%s, balancer)\n", s.name, c.Addr(s.name), what)
		for _, r := range c.Replicas(s.name) {
			fmt.Fprintf(&b, "    %-12s %s, ops http://%s, pid %d\n", r.Name, r.Listen, r.Ops, r.p.pid())
		}
	}
	fmt.Fprintf(&b, "  %-12s %s (development CA, certificates, CRM keys, NATS passwords)\n", "trust", c.pki.Path())
	b.WriteString("Ctrl-C stops everything.\n")
	_, _ = io.WriteString(w, b.String())
}

// Stop stops every part: the services, then the infrastructure, each
// given stopGrace after SIGTERM before SIGKILL. It reports the parts that
// did not stop cleanly.
func (c *Cluster) Stop() error {
	var errs []error
	var wg sync.WaitGroup
	var mu sync.Mutex
	stopAll := func(ps []*proc) {
		for _, p := range ps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := p.stop(stopGrace); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	c.mu.Lock()
	var svc []*proc
	for _, rs := range c.replicas {
		for _, r := range rs {
			if r.Alive() {
				svc = append(svc, r.p)
			}
		}
	}
	c.mu.Unlock()
	stopAll(svc)
	for _, b := range c.balancers {
		b.close()
	}
	for i := len(c.infra) - 1; i >= 0; i-- {
		stopAll([]*proc{c.infra[i]})
	}
	stopAll(c.natsProcs)
	return errors.Join(errs...)
}

// ports hands out free loopback ports, each held until release so all
// differ.
type ports struct{ held []net.Listener }

func newPorts() *ports { return &ports{} }

func (p *ports) hold() net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("no free loopback port: %v", err))
	}
	return l
}

func (p *ports) next() string {
	l := p.hold()
	p.held = append(p.held, l)
	return l.Addr().String()
}

func (p *ports) release() {
	for _, l := range p.held {
		_ = l.Close()
	}
}

// Build builds every binary the cluster runs into bin with one go build
// (the workspace at root): the services, the stand-in, FerretDB and
// nats-server, from the modules the project pins.
func Build(ctx context.Context, root, bin string) error {
	pkgs := []string{"./deploy/local/cmd/slack-standin", "./deploy/cluster/cmd/ferretdb", "github.com/nats-io/nats-server/v2"}
	for _, s := range services {
		pkgs = append(pkgs, "./services/"+s.name+"/cmd/"+s.name)
	}
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-o", bin + string(filepath.Separator)}, pkgs...)...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, b)
	}
	return nil
}
