package main

import (
	"bufio"
	"encoding/base64"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/crmslack/crmslack/libs/devpki"
	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/libs/identity"
	"github.com/crmslack/crmslack/libs/natsauth"
	"github.com/crmslack/crmslack/libs/trust"
)

// composeFile is the part of docker-compose.yml checked here.
type composeFile struct {
	Services map[string]struct {
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		Command     []string          `yaml:"command"`
	} `yaml:"services"`
}

// exampleFill are values for what deploy/docker/example.env leaves for the
// operator to fill in, each in the form its service checks.
var exampleFill = map[string]string{
	"SLACK_SIGNING_SECRET": "8f742231b10e8888abcd99yyyzzz85a5",
	"SLACK_CLIENT_ID":      "1234567890.1234567890",
	"SLACK_CLIENT_SECRET":  "client-secret",
	"GATEWAY_STATE_KEY":    strings.Repeat("ab", 32),
	"INSTALL_TICKET_KEY":   strings.Repeat("cd", 32),
	"SHARE_BUTTON_KEY":     strings.Repeat("ef", 32),
	"REMINDERS_BUTTON_KEY": strings.Repeat("12", 32),
	"TEAMS_TOKEN_KEYS":     "k1:" + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32))),
}

// TestComposeGivesEveryServiceItsConfiguration reads docker-compose.yml as
// docker compose would with deploy/docker/example.env filled in: every
// service the runner starts is in it and passes its own configuration's
// Validate; its trust files are where the pki step writes them, of its own
// identity; it logs in to NATS as itself with the password variable the
// server reads for that user; and every gRPC address it dials is a
// service's. So compose cannot drift from the services again.
func TestComposeGivesEveryServiceItsConfiguration(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("..", "..", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	dotenv := readDotenv(t, filepath.Join("..", "docker", "example.env"))
	var cf composeFile
	if err := yaml.Unmarshal(raw, &cf); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	// The pki step's folder, made as the pki step makes it.
	pkiDir := t.TempDir()
	pki, err := devpki.Open(pkiDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range append([]string{identity.CRM, identity.Console, "nats"}, identity.Services...) {
		if _, err := pki.Trust(name); err != nil {
			t.Fatal(err)
		}
	}
	if err := pki.EnsureCRMOrgs("example-org"); err != nil {
		t.Fatal(err)
	}

	env := func(service string) map[string]string {
		out := map[string]string{}
		for k, v := range cf.Services[service].Environment {
			out[k] = interpolate(t, service, k, v, dotenv)
		}
		return out
	}
	serverVars := passwordVars(t)
	natsEnv := env("nats")
	for _, v := range serverVars {
		if natsEnv[v] == "" {
			t.Errorf("nats: no %s for deploy/nats/nats-server.conf", v)
		}
	}
	if !slices.Contains(cf.Services["nats"].Command, "/etc/nats/nats-server.conf") {
		t.Errorf("nats does not run deploy/nats/nats-server.conf: %v", cf.Services["nats"].Command)
	}

	for _, s := range services {
		t.Run(s.name, func(t *testing.T) {
			c, ok := cf.Services[s.name]
			if !ok {
				t.Fatalf("docker-compose.yml has no service %s", s.name)
			}
			e := env(s.name)
			if _, _, err := s.build(envconfig.FromMap(e)); err != nil {
				t.Fatalf("its configuration is refused: %v", err)
			}
			// Its NATS login, if it uses NATS, is its own user, with the
			// password the server has for that user.
			onBus := slices.Contains(natsauth.Services, s.name)
			if onBus {
				if e[trust.VarNATSUser] != s.name {
					t.Errorf("%s = %q, want %q", trust.VarNATSUser, e[trust.VarNATSUser], s.name)
				}
				want := "${" + natsauth.PasswordVar(s.name) + ":?"
				if !strings.HasPrefix(c.Environment[trust.VarNATSPassword], want) || !slices.Contains(serverVars, natsauth.PasswordVar(s.name)) {
					t.Errorf("%s = %q, want the server's %s", trust.VarNATSPassword, c.Environment[trust.VarNATSPassword], natsauth.PasswordVar(s.name))
				}
			} else if e[trust.VarNATSUser] != "" || e[trust.VarNATSPassword] != "" {
				t.Errorf("has a NATS login but no NATS user on the server")
			}
			// Its trust files are in the mounted pki volume, and load as
			// its own identity.
			if !slices.Contains(c.Volumes, "pki:/pki:ro") {
				t.Errorf("does not mount the pki volume read-only at /pki: %v", c.Volumes)
			}
			mapped := maps.Clone(e)
			for _, v := range []string{trust.VarCert, trust.VarKey, trust.VarCA, trust.VarCRMKeys} {
				rest, ok := strings.CutPrefix(e[v], "/pki/")
				if !ok {
					t.Errorf("%s = %q is not in the pki volume", v, e[v])
					continue
				}
				mapped[v] = filepath.Join(pkiDir, rest)
			}
			files := trust.FromEnv(envconfig.FromMap(mapped))
			loaded, err := files.Load(true, onBus)
			if err != nil {
				t.Fatalf("its trust files do not load: %v", err)
			}
			if got := loaded.Identity.Name(); got != s.name {
				t.Errorf("its certificate is %q's", got)
			}
			// Every service it dials is one of compose's, on its gRPC port.
			for k, v := range e {
				if !strings.HasSuffix(k, "_ADDR") || strings.HasSuffix(k, "_GRPC_ADDR") || strings.HasSuffix(k, "_OPS_ADDR") || k == "GATEWAY_ADDR" {
					continue
				}
				host, port, _ := strings.Cut(v, ":")
				if host == "0.0.0.0" {
					continue // where it listens itself
				}
				target := strings.ToUpper(host) + "_GRPC_ADDR"
				if got := env(host)[target]; !strings.HasSuffix(got, ":"+port) {
					t.Errorf("%s = %s, but %s's %s is %q", k, v, host, target, got)
				}
			}
		})
	}
}

// readDotenv reads KEY=VALUE lines; a blank value is the operator's to fill
// in, and takes exampleFill's.
func readDotenv(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		if v == "" {
			v = exampleFill[k]
			if v == "" && strings.HasSuffix(k, "_NATS_PASSWORD") {
				v = "password-of-" + k
			}
			if v == "" {
				t.Fatalf("%s: %s is blank and the test has no value for it", path, k)
			}
		}
		out[k] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

var reference = regexp.MustCompile(`\$\{([A-Z0-9_]+)(:\?[^}]*|:-[^}]*)?\}`)

// interpolate substitutes compose's ${VAR:?…} and ${VAR:-default} from
// dotenv; a ${VAR:?…} that example.env does not list is an error.
func interpolate(t *testing.T, service, key, v string, dotenv map[string]string) string {
	t.Helper()
	return reference.ReplaceAllStringFunc(v, func(ref string) string {
		m := reference.FindStringSubmatch(ref)
		if val, ok := dotenv[m[1]]; ok {
			return val
		}
		if def, ok := strings.CutPrefix(m[2], ":-"); ok {
			return def
		}
		t.Errorf("%s: %s = %s, and deploy/docker/example.env does not list %s", service, key, v, m[1])
		return ""
	})
}

// passwordVars are the password variables deploy/nats/nats-server.conf reads.
func passwordVars(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "nats", "nats-server.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range regexp.MustCompile(`password: \$([A-Z0-9_]+)`).FindAllStringSubmatch(string(b), -1) {
		out = append(out, m[1])
	}
	if len(out) == 0 {
		t.Fatal("deploy/nats/nats-server.conf reads no password")
	}
	return out
}
