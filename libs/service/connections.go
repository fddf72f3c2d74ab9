package service

import (
	"fmt"

	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/libs/store"
	"github.com/crmslack/crmslack/libs/trust"
)

// Connections are the settings every service has alike: its trust, the
// bus, its database and its listeners. A service's Config embeds them, reads
// them with [Vars.FromEnv], checks them with [Vars.Check], and hands its
// [Vars] to the skeleton in [Spec.Vars], which opens the store and bus and
// binds the listeners from them. The variables shared by every service
// (NATS_URL, MONGODB_URI, ...) are named here once; a service's own ones
// are <PREFIX>_MONGODB_DATABASE, <PREFIX>_GRPC_ADDR and <PREFIX>_OPS_ADDR.
type Connections struct {
	// Files are the trust files: TLS_CERT_FILE, TLS_KEY_FILE, TLS_CA_FILE,
	// CRM_KEYS_FILE, NATS_USER and NATS_PASSWORD (libs/trust). Required.
	trust.Files
	// NATSURL is NATS_URL: the NATS server(s). Default
	// nats://127.0.0.1:4222.
	NATSURL string
	// NATSReplicas is NATS_REPLICAS: replicas of the streams and buckets
	// the service ensures. Default 1.
	NATSReplicas int
	// MongoURI is MONGODB_URI, for a service with a database. Default
	// mongodb://127.0.0.1:27017.
	MongoURI string
	// Database is <PREFIX>_MONGODB_DATABASE, the service's own database.
	// Default: [Vars.Database].
	Database string
	// GRPCAddr is <PREFIX>_GRPC_ADDR, where a service with a gRPC API
	// listens. Default: [Vars.GRPCAddr].
	GRPCAddr string
	// OpsAddr is <PREFIX>_OPS_ADDR, serving /healthz, /readyz and /metrics.
	// Default: [Vars.OpsAddr].
	OpsAddr string

	// Listeners, not from the environment, are listeners to serve on
	// instead of binding the addresses, by listener name (ListenerGRPC,
	// ListenerOps, or a Spec.HTTP name): a test binds port 0 and knows the
	// address before the service starts.
	Listeners Listeners
}

// ServiceConnections returns c; through embedding it is how the skeleton
// finds a service's Connections in its Config.
func (c Connections) ServiceConnections() Connections { return c }

// Vars names a service's own connection variables and gives their
// defaults. A service declares its Vars once and uses it to read, check and
// run its Config.
type Vars struct {
	// Prefix starts the service's own variables, e.g. "TEAMS" for
	// TEAMS_MONGODB_DATABASE, TEAMS_GRPC_ADDR and TEAMS_OPS_ADDR.
	Prefix string
	// Database is <PREFIX>_MONGODB_DATABASE's default. Empty: the service
	// keeps no database (MONGODB_URI is not read).
	Database string
	// GRPCAddr is <PREFIX>_GRPC_ADDR's default. Empty: the service serves
	// no gRPC API.
	GRPCAddr string
	// OpsAddr is <PREFIX>_OPS_ADDR's default.
	OpsAddr string
}

// Variable is the name of the service's own variable suffix ("GRPC_ADDR").
func (v Vars) Variable(suffix string) string { return v.Prefix + "_" + suffix }

// FromEnv reads the connections; problems are recorded in l.
func (v Vars) FromEnv(l *envconfig.Loader) Connections {
	c := Connections{
		Files:        trust.FromEnv(l),
		NATSURL:      l.String("NATS_URL", "nats://127.0.0.1:4222"),
		NATSReplicas: l.Int("NATS_REPLICAS", 1, 1, 5),
		OpsAddr:      l.String(v.Variable("OPS_ADDR"), v.OpsAddr),
	}
	if v.Database != "" {
		c.MongoURI = l.String("MONGODB_URI", "mongodb://127.0.0.1:27017")
		c.Database = l.String(v.Variable("MONGODB_DATABASE"), v.Database)
	}
	if v.GRPCAddr != "" {
		c.GRPCAddr = l.String(v.Variable("GRPC_ADDR"), v.GRPCAddr)
	}
	return c
}

// Check records every problem of c in p, by variable. The trust files are
// checked when they are loaded (Run), so config tests need none.
func (v Vars) Check(p *envconfig.Problems, c Connections) {
	p.NATS(c.NATSURL, c.NATSReplicas)
	if v.Database != "" {
		p.Check("MONGODB_URI/"+v.Variable("MONGODB_DATABASE"), store.Config{URI: c.MongoURI, Database: c.Database}.Validate())
	}
	addrs := map[string]string{v.Variable("OPS_ADDR"): c.OpsAddr}
	if v.GRPCAddr != "" {
		addrs[v.Variable("GRPC_ADDR")] = c.GRPCAddr
	}
	p.HostPort(addrs)
}

// fromConnections fills, for a Spec with Vars, what the Config's
// Connections give: the store's URI and database, the bus's URL and
// replicas, the gRPC and ops listeners, and the listeners passed in.
func (s *Spec) fromConnections() error {
	v := s.Vars
	if v.Prefix == "" {
		return nil
	}
	has, ok := s.Config.(interface{ ServiceConnections() Connections })
	if !ok {
		return fmt.Errorf("service: %s declares Vars but its Config (%T) embeds no service.Connections", s.Name, s.Config)
	}
	c := has.ServiceConnections()
	if v.Database != "" {
		st := Store{}
		if s.Store != nil {
			st = *s.Store
		}
		st.Config.URI, st.Config.Database = c.MongoURI, c.Database
		s.Store = &st
	}
	b := Bus{}
	if s.Bus != nil {
		b = *s.Bus
	}
	b.URL, b.Replicas = c.NATSURL, c.NATSReplicas
	s.Bus = &b
	if v.GRPCAddr != "" {
		s.GRPC = &Listen{Addr: c.GRPCAddr, Var: v.Variable("GRPC_ADDR")}
	}
	s.Ops = Listen{Addr: c.OpsAddr, Var: v.Variable("OPS_ADDR")}
	for name, l := range c.Listeners {
		if _, dup := s.Listeners[name]; dup {
			return fmt.Errorf("service: %s: listener %q passed twice (Spec.Listeners and Connections.Listeners)", s.Name, name)
		}
		if s.Listeners == nil {
			s.Listeners = Listeners{}
		}
		s.Listeners[name] = l
	}
	return nil
}
