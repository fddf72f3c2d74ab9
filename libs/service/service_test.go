package service_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/identity"
	"github.com/crmslack/crmslack/libs/service"
	"github.com/crmslack/crmslack/libs/store"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/topology"
	"github.com/crmslack/crmslack/libs/trust"
	commonv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/common/v1"
	crmv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/crm/v1"
)

type cfg struct {
	trust.Files
	bad bool
}

// plainCfg carries no trust files at all.
type plainCfg struct{}

func (plainCfg) Validate() error { return nil }

func (c cfg) Validate() error {
	if c.bad {
		return errors.New("SVC_THING: must be set")
	}
	return nil
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestRunWiresServesAndClosesInReverse runs a service with every kind of
// need against the real parts: it is ready only once its hold is released,
// /metrics carries its series, and on the way out its closers run in
// reverse order before the bus and store close.
func TestRunWiresServesAndClosesInReverse(t *testing.T) {
	t.Parallel()
	ns, ms := testkit.NATS(t), testkit.Mongo(t)
	pki := testkit.PKI(t)
	ops, web := listen(t), listen(t)
	opsURL := "http://" + ops.Addr().String()

	var mu sync.Mutex
	var order []string
	note := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	reg := prometheus.NewRegistry()
	ready := make(chan service.Bound, 1)
	release := make(chan func(), 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- service.Run(ctx, service.Spec{
			Name: "demo", Config: cfg{Files: testkit.TrustFiles(t, pki, identity.Query)}, Log: testkit.Logger(t), Registry: reg,
			Store: &service.Store{Config: store.Config{URI: ms.URI(), Database: "demo"}, Indexes: []store.IndexSpec{{
				Collection: "things", Model: mongo.IndexModel{Keys: bson.D{{Key: "k", Value: 1}}, Options: options.Index().SetUnique(true)},
			}}},
			Bus:       &service.Bus{URL: ns.ClientURL(), Replicas: 1, Streams: []string{topology.StreamCRM}},
			GRPC:      &service.Listen{Addr: "127.0.0.1:0", Var: "DEMO_GRPC_ADDR"},
			HTTP:      []service.Listen{{Name: "web", Addr: "127.0.0.1:1", Var: "DEMO_ADDR"}},
			Ops:       service.Listen{Addr: "127.0.0.1:1", Var: "DEMO_OPS_ADDR"},
			Listeners: service.Listeners{service.ListenerOps: ops, "web": web},
			Build: func(ctx context.Context, rt *service.Runtime) error {
				if rt.Store == nil || rt.Bus == nil || rt.GRPC() == nil {
					return errors.New("store, bus or gRPC server missing")
				}
				if _, err := rt.Bus.JetStream().Stream(ctx, topology.StreamCRM); err != nil {
					return err
				}
				c := prometheus.NewCounter(prometheus.CounterOpts{Name: "demo_things_total", Help: "Things."})
				c.Inc()
				rt.Registry().MustRegister(c)
				rt.HTTP("web", &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					_, _ = w.Write([]byte("hello"))
				}), ReadHeaderTimeout: time.Second})
				rt.OnClose("first", func(context.Context) error { note("first"); return nil })
				rt.OnClose("second", func(context.Context) error { note("second"); return nil })
				rt.Part("loop", func(ctx context.Context) error { <-ctx.Done(); note("loop"); return nil })
				release <- rt.HoldReady()
				return nil
			},
			Ready: func(b service.Bound) { ready <- b },
		})
	}()

	var hold func()
	select {
	case hold = <-release:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		resp, err := http.Get(opsURL + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	}, "ops serving")
	if code, body := get(t, opsURL+"/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz while held = %d %q, want 503", code, body)
	}
	hold()
	var b service.Bound
	select {
	case b = <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("not ready after the hold was released")
	}
	if b[service.ListenerOps] != ops.Addr().String() || b["web"] != web.Addr().String() || b[service.ListenerGRPC] == "" {
		t.Fatalf("bound = %v", b)
	}
	if code, _ := get(t, opsURL+"/readyz"); code != 200 {
		t.Fatalf("/readyz = %d", code)
	}
	if code, body := get(t, opsURL+"/metrics"); code != 200 || !strings.Contains(body, "demo_things_total 1") {
		t.Fatalf("/metrics = %d without the service's series:\n%s", code, body)
	}
	if _, body := get(t, "http://"+b["web"]); body != "hello" {
		t.Fatalf("web = %q", body)
	}
	// gRPC is served over mutual TLS: a peer of the same CA gets an answer.
	health := healthpb.NewHealthClient(testkit.DialAs(t, pki, "gateway", identity.Query, b[service.ListenerGRPC]))
	if _, err := health.Check(testkit.Context(t), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("health over mutual TLS: %v", err)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("clean stop: %v", err)
	}
	if strings.Join(order, ",") != "loop,second,first" {
		t.Fatalf("stop order = %v, want the part, then closers in reverse", order)
	}
	if _, err := http.Get(opsURL + "/healthz"); err == nil {
		t.Fatal("ops still serving after Run returned")
	}
}

func TestRunRefusesBeforeOpeningAnything(t *testing.T) {
	t.Parallel()
	ok := func(context.Context, *service.Runtime) error { return nil }
	files := testkit.TrustFiles(t, testkit.PKI(t), "x")
	noKeys := files
	noKeys.CRMKeysFile = ""
	wrapped := prometheus.WrapRegistererWith(prometheus.Labels{"service": "x"}, prometheus.NewRegistry())
	cases := []struct {
		name string
		spec service.Spec
		says string
	}{
		{"invalid configuration", service.Spec{Name: "x", Config: cfg{bad: true}, Build: ok}, "x configuration: SVC_THING: must be set"},
		{"registry that cannot be gathered", service.Spec{Name: "x", Config: cfg{Files: files}, Build: ok, Registry: wrapped}, "/metrics would be empty"},
		{"no build", service.Spec{Name: "x", Config: cfg{}}, "lacks [Build]"},
		{"no trust files in its Config", service.Spec{Name: "x", Config: plainCfg{}, Build: ok}, "embeds no trust.Files"},
		{"trust files missing", service.Spec{Name: "x", Config: cfg{}, Build: ok}, "TLS_CERT_FILE: required"},
		{"serving gRPC without the CRM keys", service.Spec{Name: "x", Config: cfg{Files: noKeys}, Build: ok, GRPC: &service.Listen{Addr: "127.0.0.1:0"}}, "CRM_KEYS_FILE: required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.spec.Log = testkit.Logger(t)
			ops := listen(t)
			c.spec.Listeners = service.Listeners{service.ListenerOps: ops}
			err := service.Run(context.Background(), c.spec)
			if err == nil || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("err = %v, want it to say %q", err, c.says)
			}
			if conn, err := net.Dial("tcp", ops.Addr().String()); err == nil {
				conn.Close()
				t.Fatal("the passed-in listener was not closed")
			}
		})
	}
}

func TestRunFailsOnAnHTTPListenerWithoutServer(t *testing.T) {
	t.Parallel()
	ops := listen(t)
	err := service.Run(context.Background(), service.Spec{
		Name: "x", Config: cfg{Files: testkit.TrustFiles(t, testkit.PKI(t), "x")}, Log: testkit.Logger(t),
		HTTP:      []service.Listen{{Name: "web", Addr: "127.0.0.1:0"}},
		Listeners: service.Listeners{service.ListenerOps: ops},
		Build:     func(context.Context, *service.Runtime) error { return nil },
	})
	if err == nil || !strings.Contains(err.Error(), `"web" has no server`) {
		t.Fatalf("err = %v", err)
	}
	if _, err := net.Dial("tcp", ops.Addr().String()); err == nil {
		t.Fatal("the passed-in listener was not closed")
	}
}

// TestDeletedConsumerFailsReadinessAndComesBack deletes a service's durable
// consumer on the server: /readyz turns not ready within seconds, the
// consumer is re-created, /readyz is ready again, and every event published
// before, during and after is handled.
func TestDeletedConsumerFailsReadinessAndComesBack(t *testing.T) {
	t.Parallel()
	ns := testkit.NATS(t)
	ops := listen(t)
	var mu sync.Mutex
	handled := map[string]bool{}
	pub := make(chan *bus.Bus, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	const durable = "query-records-upserted" // a consumer the query user may run (libs/natsauth)
	go func() {
		done <- service.Run(ctx, service.Spec{
			Name: "demo", Config: cfg{Files: testkit.TrustFiles(t, testkit.PKI(t), identity.Query)}, Log: testkit.Logger(t),
			Bus:       &service.Bus{URL: ns.ClientURL(), Replicas: 1, Streams: []string{topology.StreamCRM}, ConsumerCheckInterval: time.Second},
			Ops:       service.Listen{Addr: "127.0.0.1:0"},
			Listeners: service.Listeners{service.ListenerOps: ops},
			Build: func(ctx context.Context, rt *service.Runtime) error {
				sub, err := bus.Subscribe(ctx, rt.Bus, bus.ConsumerSpec{
					Stream: topology.StreamCRM, Durable: durable, FilterSubjects: []string{"crm.v1.*.record.upserted.*"},
					MaxDeliver: 5, BackOff: []time.Duration{100 * time.Millisecond},
				}, func(_ context.Context, ev *crmv1.RecordUpserted) error {
					mu.Lock()
					handled[ev.GetEnvelope().GetEventId()] = true
					mu.Unlock()
					return nil
				})
				if err != nil {
					return err
				}
				rt.Consumer(durable, sub)
				pub <- rt.Bus
				return nil
			},
		})
	}()
	select {
	case <-pub:
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	// The CRM's events, and the consumer's removal, come from the test
	// (the service's user may do neither).
	b, err := bus.Connect(testkit.Context(t), bus.Config{URL: ns.ClientURL(), Name: "test", NATSOptions: []nats.Option{testkit.NATSLogin(t)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	opsAddr := ops.Addr().String()
	testkit.WaitReady(t, opsAddr, 10*time.Second)
	n := 0
	publishSome := func() {
		for range 10 {
			n++
			id := fmt.Sprintf("ev-%d", n)
			ev := &crmv1.RecordUpserted{
				Envelope: &commonv1.Envelope{EventId: id, OrgId: "o1", OccurredAt: timestamppb.Now(), SchemaVersion: 1, Producer: "test"},
				Record:   &crmv1.Record{Module: "Deals", Id: id, Version: 1},
			}
			if _, err := b.Publish(testkit.Context(t), topology.RecordUpserted("o1", "Deals"), ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	all := func() bool { mu.Lock(); defer mu.Unlock(); return len(handled) == n }
	publishSome()
	testkit.Eventually(t, 10*time.Second, all, "first events handled")

	if err := b.JetStream().DeleteConsumer(testkit.Context(t), topology.StreamCRM, durable); err != nil {
		t.Fatal(err)
	}
	publishSome()
	testkit.Eventually(t, 5*time.Second, func() bool { return !testkit.Ready(opsAddr) }, "/readyz not ready after the consumer was deleted")
	code, body := get(t, "http://"+opsAddr+"/readyz")
	t.Logf("/readyz while deleted: %d %s", code, body)
	testkit.WaitReady(t, opsAddr, 15*time.Second)
	if _, err := b.JetStream().Consumer(testkit.Context(t), topology.StreamCRM, durable); err != nil {
		t.Fatalf("consumer not back: %v", err)
	}
	publishSome()
	testkit.Eventually(t, 10*time.Second, all, "every event handled, none lost")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("clean stop: %v", err)
	}
}
