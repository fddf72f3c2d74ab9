package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/crmslack/crmslack/libs/natsauth"
	"github.com/crmslack/crmslack/libs/trust"
)

// natsNode is one nats-server of the cluster.
type natsNode struct {
	name                   string
	client, route, monitor string // host:port
	conf, store            string
}

// natsConfig is node n's configuration: JetStream on file storage, clients
// over TLS only with a certificate of the development CA (verify) and
// routes to every other node over mutual TLS (both as the nats identity),
// the users and permissions of libs/natsauth with their passwords from the
// server's environment, as deploy/nats is for production.
func natsConfig(n natsNode, all []natsNode, tls trust.Files, crmOrgs []string) (string, error) {
	users, err := natsauth.ServerConfig(crmOrgs)
	if err != nil {
		return "", err
	}
	var routes []string
	for _, o := range all {
		if o.name != n.name {
			routes = append(routes, fmt.Sprintf("%q", "nats-route://"+o.route))
		}
	}
	host, port := splitHostPort(n.client)
	rhost, rport := splitHostPort(n.route)
	mhost, mport := splitHostPort(n.monitor)
	var b strings.Builder
	fmt.Fprintf(&b, `# Made by deploy/cluster for node %[1]s; edit deploy/cluster/nats.go.
server_name: %[1]q
host: %[2]q
port: %[3]s
http: "%[4]s:%[5]s"
tls {
  cert_file: %[10]q
  key_file: %[11]q
  ca_file: %[12]q
  verify: true
  timeout: 5
}
jetstream {
  store_dir: %[6]q
  max_memory_store: 256MB
  max_file_store: 4GB
}
cluster {
  name: "crmslack"
  host: %[7]q
  port: %[8]s
  routes: [%[9]s]
  tls {
    cert_file: %[10]q
    key_file: %[11]q
    ca_file: %[12]q
    verify: true
    timeout: 5
  }
}
`, n.name, host, port, mhost, mport, n.store, rhost, rport, strings.Join(routes, ", "), tls.TLSCertFile, tls.TLSKeyFile, tls.TLSCAFile)
	b.WriteString(users)
	return b.String(), nil
}

// startNATS writes node n's configuration and starts it; ready waits for
// the cluster.
func startNATS(bin string, n natsNode, all []natsNode, tls trust.Files, crmOrgs []string, passwords map[string]string, out io.Writer) (*proc, error) {
	conf, err := natsConfig(n, all, tls, crmOrgs)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(n.store, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(n.conf, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	env := map[string]string{}
	for user, pw := range passwords {
		env[natsauth.PasswordVar(user)] = pw
	}
	return startProc(procSpec{name: n.name, path: bin, args: []string{"-c", n.conf}, env: environ(env), dir: filepath.Dir(n.conf)}, out)
}

// natsClusterReady waits until every node reports a JetStream meta leader
// and the whole cluster as its peers, so streams can be made R3.
func natsClusterReady(ctx context.Context, procs []*proc, nodes []natsNode, timeout time.Duration) error {
	for i, n := range nodes {
		err := procs[i].waitFor(ctx, "in a JetStream cluster of "+fmt.Sprint(len(nodes)), timeout, func() bool {
			for _, p := range procs {
				if p.exited() {
					return true // reported below
				}
			}
			var jsz struct {
				Meta struct {
					Leader  string `json:"leader"`
					Size    int    `json:"cluster_size"`
					Replica []struct {
						Current bool `json:"current"`
					} `json:"replicas"`
				} `json:"meta_cluster"`
			}
			if getJSON("http://"+n.monitor+"/jsz", &jsz) != nil {
				return false
			}
			return jsz.Meta.Leader != "" && jsz.Meta.Size == len(nodes)
		})
		if err != nil {
			return err
		}
	}
	for _, p := range procs {
		if p.exited() {
			return fmt.Errorf("%s exited before the cluster formed: %v: %w", p.name, p.err, errExited)
		}
	}
	return nil
}

func getJSON(url string, v any) error {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func splitHostPort(addr string) (string, string) {
	i := strings.LastIndex(addr, ":")
	return addr[:i], addr[i+1:]
}
