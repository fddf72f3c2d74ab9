package accesskv

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/testkit"

	"github.com/crmslack/crmslack/services/teams/internal/registry"
)

// TestSyncNeverGoesBack: writers race, each computing the access from a
// "database" that only moves forward; the bucket must end on the newest
// state, never on an older one computed by a slow writer.
func TestSyncNeverGoesBack(t *testing.T) {
	t.Parallel()
	js := testkit.JetStream(t, testkit.NATSConn(t, testkit.NATS(t)))
	ctx := testkit.Context(t)
	kv, err := Ensure(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	s := New(kv)
	var db atomic.Int64 // number of teams the org has "now"
	compute := func(slow bool) func(context.Context) (registry.Access, error) {
		return func(context.Context) (registry.Access, error) {
			n := db.Load()
			if slow {
				time.Sleep(5 * time.Millisecond) // computed from data that may be stale by now
			}
			a := registry.Access{OrgID: "org1", Enabled: true, At: time.Now()}
			for i := range n {
				a.Teams = append(a.Teams, registry.TeamAccess{TeamID: "T" + string(rune('A'+i)) + "0000000"})
			}
			return a, nil
		}
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			db.Add(1)
			if err := s.Sync(ctx, "org1", compute(i%2 == 0)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := Load(ctx, kv, "org1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.GetTeams()) != 8 || !got.GetIntegrationEnabled() {
		t.Fatalf("bucket holds %d teams, want the newest state (8)", len(got.GetTeams()))
	}
	// Same content again: no new revision.
	e1, _ := kv.Get(ctx, "org1")
	if err := s.Sync(ctx, "org1", compute(false)); err != nil {
		t.Fatal(err)
	}
	e2, _ := kv.Get(ctx, "org1")
	if e1.Revision() != e2.Revision() {
		t.Fatal("an unchanged access was written again")
	}
	if err := s.Sync(ctx, "org.1", compute(false)); err == nil {
		t.Fatal("an org id that is not a key was accepted")
	}
}
