package bus_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/crmslack/crmslack/libs/bus"
	"github.com/crmslack/crmslack/libs/testkit"
)

func TestFollowKeyValueLoadsSyncsThenFollowsPutsAndDeletes(t *testing.T) {
	t.Parallel()
	b := newEnv(t).bus
	ctx := testkit.Context(t)
	kv, err := bus.BindKeyValue(ctx, b.JetStream(), jetstream.KeyValueConfig{Bucket: "follow_test", Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "before", []byte("1")); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]string{}
	var synced atomic.Bool
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- bus.FollowKeyValue(fctx, kv, 10*time.Millisecond, testkit.Logger(t), "the test bucket", func(e jetstream.KeyValueEntry) {
			mu.Lock()
			defer mu.Unlock()
			if e.Operation() != jetstream.KeyValuePut {
				delete(seen, e.Key())
				return
			}
			if synced.Load() && e.Key() == "before" {
				t.Errorf("a value present at the start arrived after synced")
			}
			seen[e.Key()] = string(e.Value())
		}, func() { synced.Store(true) })
	}()
	has := func(k, v string) bool { mu.Lock(); defer mu.Unlock(); return seen[k] == v }
	testkit.Eventually(t, 5*time.Second, func() bool { return synced.Load() && has("before", "1") }, "initial value, then synced")
	if _, err := kv.Put(ctx, "after", []byte("2")); err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "before"); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return has("after", "2") && has("before", "") }, "put and delete followed")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("FollowKeyValue after ctx ended: %v", err)
	}
}
