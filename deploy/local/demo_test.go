package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/crmslack/crmslack/deploy/local/demo"
	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/testkit"
	"github.com/crmslack/crmslack/libs/topology"
)

// TestDemoDataLoadsOnceAcrossRestarts: the first run loads the data set
// once the CRM stream exists; a second run on the same data folder
// publishes nothing; a load done twice (a crash before the marker) stores
// nothing twice.
func TestDemoDataLoadsOnceAcrossRestarts(t *testing.T) {
	t.Parallel()
	ns := testkit.NATS(t)
	ctx := testkit.Context(t)
	b, err := bus.Connect(ctx, bus.Config{URL: ns.ClientURL(), Name: t.Name(), Logger: testkit.Logger(t), NATSOptions: []nats.Option{testkit.NATSLogin(t)}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	pub := crmBus{b}
	dir := t.TempDir()
	var out syncBuffer

	runOnce := func(started func()) {
		t.Helper()
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- demoPart(dir, "acme", pub, testkit.Logger(t), &out).Run(rctx) }()
		started()
		testkit.Eventually(t, 30*time.Second, func() bool {
			_, err := os.Stat(filepath.Join(dir, "demo-loaded-acme"))
			return err == nil
		}, "the demo data was never loaded:\n%s", out.String())
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	count := func() uint64 {
		t.Helper()
		s, err := b.JetStream().Stream(ctx, topology.StreamCRM)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	// The stream is made after the part started, as the services make it.
	runOnce(func() {
		if err := b.EnsureStreams(ctx, topology.Select(topology.StreamOptions{}, topology.StreamCRM)...); err != nil {
			t.Error(err)
		}
	})
	want := uint64(len(demo.Users()) + demo.NumAccounts + demo.NumContacts + demo.NumLeads + demo.NumDeals)
	if got := count(); got != want {
		t.Fatalf("%d events stored, want %d", got, want)
	}
	runOnce(func() {})
	if got := count(); got != want {
		t.Fatalf("after a restart, %d events stored, want still %d", got, want)
	}
	// A load cut short before the marker is done again whole: duplicates.
	if _, err := demo.Load(ctx, pub, "acme", time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != want {
		t.Fatalf("after loading again, %d events stored, want still %d", got, want)
	}
}
