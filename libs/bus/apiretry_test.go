package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/testkit"
)

// TestCreationRetriedUntilAnswered: a stream creation the server does not
// answer (here: it is down, as a forming cluster may leave one unanswered,
// nats-server#3677) is repeated with back-off and succeeds once the server
// answers (consumer creations go through the same createWithRetry); a
// creation that is never answered fails after its attempts instead of
// hanging.
func TestCreationRetriedUntilAnswered(t *testing.T) {
	t.Parallel()
	srv := testkit.NATS(t)
	reg := prometheus.NewRegistry()
	b, err := bus.Connect(testkit.Context(t), bus.Config{
		URL: srv.ClientURL(), Name: t.Name(), Logger: testkit.Logger(t), Registerer: reg,
		NATSOptions:       []nats.Option{testkit.NATSLogin(t)},
		MaxReconnectWait:  100 * time.Millisecond,
		APIAttemptTimeout: 300 * time.Millisecond,
		APIAttempts:       1000, // bounded by the test's context
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	retries := func() float64 { return gauge(t, reg, "crmslack_bus_api_retries_total") }

	srv.Shutdown()
	name := streamName(t)
	done := make(chan error, 1)
	go func() {
		_, err := b.EnsureStream(testkit.Context(t), jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}, Duplicates: bus.MinDuplicateWindow})
		done <- err
	}()
	testkit.Eventually(t, 20*time.Second, func() bool { return retries() >= 1 }, "a retried stream creation")
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("EnsureStream after the server came back: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("EnsureStream did not return after the server came back")
	}

	// Bounded: two unanswered attempts, then the error.
	few, err := bus.Connect(testkit.Context(t), bus.Config{
		URL: srv.ClientURL(), Name: t.Name() + "-few", Logger: testkit.Logger(t),
		NATSOptions:       []nats.Option{testkit.NATSLogin(t)},
		APIAttemptTimeout: 200 * time.Millisecond,
		APIAttempts:       2,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = few.Close() })
	srv.Shutdown()
	if _, err := few.EnsureStream(testkit.Context(t), jetstream.StreamConfig{Name: name + "_2", Subjects: []string{name + "_2.>"}, Duplicates: bus.MinDuplicateWindow}); err == nil {
		t.Fatal("a creation never answered succeeded")
	}
}

// gauge is the value of the unlabelled counter name in reg.
func gauge(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// TestBucketCreationOutlastsAnOutage: a bucket's creation waits out a
// server down for longer than one request's own timeout (nats.go's 5 s),
// as a stream's does, instead of failing the service's start.
func TestBucketCreationOutlastsAnOutage(t *testing.T) {
	t.Parallel()
	srv := testkit.NATS(t)
	nc := testkit.NATSConn(t, srv)
	js := testkit.JetStream(t, nc)
	srv.Shutdown()
	done := make(chan error, 1)
	go func() {
		_, err := bus.BindKeyValue(context.Background(), js, jetstream.KeyValueConfig{Bucket: "outage"})
		done <- err
	}()
	time.Sleep(6 * time.Second) // the outage: longer than a request's own timeout
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("BindKeyValue after the server came back: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("BindKeyValue did not return after the server came back")
	}
}
