package service_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/envconfig"
	"github.com/crmslack/crmslack/libs/service"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/topology"
)

var demoVars = service.Vars{Prefix: "DEMO", Database: "demo", GRPCAddr: "127.0.0.1:9199", OpsAddr: "127.0.0.1:9299"}

// connCfg is a Config the usual way: Connections embedded.
type connCfg struct {
	service.Connections
}

func (c connCfg) Validate() error {
	var p envconfig.Problems
	demoVars.Check(&p, c.Connections)
	return p.Err()
}

func TestVarsReadTheSharedAndTheServicesOwnVariables(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		vars service.Vars
		env  map[string]string
		want service.Connections
	}{
		{"defaults", demoVars, nil, service.Connections{
			NATSURL: "nats://127.0.0.1:4222", NATSReplicas: 1, MongoURI: "mongodb://127.0.0.1:27017", Database: "demo",
			GRPCAddr: "127.0.0.1:9199", OpsAddr: "127.0.0.1:9299",
		}},
		{"set", demoVars, map[string]string{
			"NATS_URL": "nats://n:1", "NATS_REPLICAS": "3", "MONGODB_URI": "mongodb://m:2", "DEMO_MONGODB_DATABASE": "d2",
			"DEMO_GRPC_ADDR": "0.0.0.0:1", "DEMO_OPS_ADDR": "0.0.0.0:2", "TLS_CERT_FILE": "/c", "NATS_USER": "demo",
		}, service.Connections{
			NATSURL: "nats://n:1", NATSReplicas: 3, MongoURI: "mongodb://m:2", Database: "d2",
			GRPCAddr: "0.0.0.0:1", OpsAddr: "0.0.0.0:2",
		}},
		// A service without a database or gRPC API reads neither.
		{"bus only", service.Vars{Prefix: "DEMO", OpsAddr: "127.0.0.1:9299"}, map[string]string{
			"MONGODB_URI": "mongodb://m:2", "DEMO_GRPC_ADDR": "0.0.0.0:1",
		}, service.Connections{NATSURL: "nats://127.0.0.1:4222", NATSReplicas: 1, OpsAddr: "127.0.0.1:9299"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := envconfig.FromMap(tc.env)
			got := tc.vars.FromEnv(l)
			if err := l.Err(); err != nil {
				t.Fatal(err)
			}
			if tc.env["TLS_CERT_FILE"] != got.TLSCertFile || tc.env["NATS_USER"] != got.NATSUser {
				t.Errorf("trust files = %+v", got.Files)
			}
			got.Files = tc.want.Files
			if got.NATSURL != tc.want.NATSURL || got.NATSReplicas != tc.want.NATSReplicas || got.MongoURI != tc.want.MongoURI ||
				got.Database != tc.want.Database || got.GRPCAddr != tc.want.GRPCAddr || got.OpsAddr != tc.want.OpsAddr {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestVarsCheckNamesEachVariable(t *testing.T) {
	t.Parallel()
	err := connCfg{service.Connections{NATSReplicas: 0, MongoURI: "http://x", Database: "", GRPCAddr: "9199", OpsAddr: "ops"}}.Validate()
	for _, v := range []string{"NATS_URL", "NATS_REPLICAS", "MONGODB_URI/DEMO_MONGODB_DATABASE", "DEMO_GRPC_ADDR", "DEMO_OPS_ADDR"} {
		if err == nil || !strings.Contains(err.Error(), v) {
			t.Errorf("%s not named in %v", v, err)
		}
	}
	// Without a database or gRPC API, neither is checked.
	var p envconfig.Problems
	service.Vars{Prefix: "DEMO"}.Check(&p, service.Connections{NATSURL: "nats://x", NATSReplicas: 1, OpsAddr: "127.0.0.1:1"})
	if err := p.Err(); err != nil {
		t.Errorf("bus-only service: %v", err)
	}
}

func TestRunTakesStoreBusAndListenersFromConnections(t *testing.T) {
	t.Parallel()
	ns, ms := testkit.NATS(t), testkit.Mongo(t)
	ops := listen(t)
	c := connCfg{service.Connections{
		Files: testkit.TrustFiles(t, testkit.PKI(t), "teams"), NATSURL: ns.ClientURL(), NATSReplicas: 1,
		MongoURI: ms.URI(), Database: "demo", GRPCAddr: "127.0.0.1:0", OpsAddr: "127.0.0.1:1",
		Listeners: service.Listeners{service.ListenerOps: ops},
	}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan service.Bound, 1)
	done := make(chan error, 1)
	go func() {
		done <- service.Run(ctx, service.Spec{
			Name: "demo", Config: c, Log: testkit.Logger(t), Vars: demoVars,
			Bus: &service.Bus{Streams: []string{topology.StreamCRM}},
			Build: func(ctx context.Context, rt *service.Runtime) error {
				if rt.Store == nil || rt.Store.DB().Name() != "demo" || rt.Bus == nil || rt.GRPC() == nil {
					return errors.New("store, bus or gRPC server not taken from the Connections")
				}
				_, err := rt.Bus.JetStream().Stream(ctx, topology.StreamCRM)
				return err
			},
			Ready: func(b service.Bound) { ready <- b },
		})
	}()
	select {
	case b := <-ready:
		if b[service.ListenerOps] != ops.Addr().String() || b[service.ListenerGRPC] == "" {
			t.Fatalf("bound = %v: the ops listener passed in Connections.Listeners was not served", b)
		}
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(testkit.DefaultTimeout):
		t.Fatal("not ready")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("clean stop: %v", err)
	}

	// Vars without embedded Connections is a programming error, said so.
	err := service.Run(context.Background(), service.Spec{
		Name: "demo", Config: cfg{}, Log: testkit.Logger(t), Vars: demoVars,
		Build: func(context.Context, *service.Runtime) error { return nil },
	})
	if err == nil || !strings.Contains(err.Error(), "embeds no service.Connections") {
		t.Fatalf("Run with Vars but no Connections: %v", err)
	}
}
