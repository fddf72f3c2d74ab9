package orgaccess

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/testkit"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"
)

type recorder struct {
	mu     sync.Mutex
	orgs   map[string]*teamsv1.OrgAccess
	synced bool
}

func (r *recorder) Set(org string, a *teamsv1.OrgAccess) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a == nil {
		delete(r.orgs, org)
		return
	}
	r.orgs[org] = a
}

func (r *recorder) MarkSynced() { r.mu.Lock(); r.synced = true; r.mu.Unlock() }

func (r *recorder) get(org string) (*teamsv1.OrgAccess, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, ok := r.orgs[org]
	return a, ok
}

func TestFollowWaitsForTheBucketAndRefusesWhatItCannotTrust(t *testing.T) {
	t.Parallel()
	js := testkit.JetStream(t, testkit.NATSConn(t, testkit.NATS(t)))
	ctx, cancel := context.WithCancel(testkit.Context(t))
	rec := &recorder{orgs: map[string]*teamsv1.OrgAccess{}}
	done := make(chan error, 1)
	// Followed before the registry created the bucket.
	go func() { done <- Follow(ctx, js, rec, 20*time.Millisecond, testkit.Logger(t)) }()

	kv, err := Bucket(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	put := func(key string, a *teamsv1.OrgAccess) {
		t.Helper()
		b, err := proto.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(ctx, key, b); err != nil {
			t.Fatal(err)
		}
	}
	put("o1", &teamsv1.OrgAccess{OrgId: "o1", IntegrationEnabled: true})
	put("o2", &teamsv1.OrgAccess{OrgId: "o2", IntegrationEnabled: true})
	testkit.Eventually(t, 10*time.Second, func() bool {
		_, ok1 := rec.get("o1")
		_, ok2 := rec.get("o2")
		return ok1 && ok2
	}, "org access not followed")

	put("o1", &teamsv1.OrgAccess{OrgId: "someone-else"})             // under the wrong key
	if _, err := kv.Put(ctx, "o2", []byte{0xff, 0xff}); err != nil { // undecodable
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		_, ok1 := rec.get("o1")
		_, ok2 := rec.get("o2")
		return !ok1 && !ok2
	}, "untrustworthy entries were kept")

	put("o3", &teamsv1.OrgAccess{OrgId: "o3"})
	if err := kv.Delete(ctx, "o3"); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { _, ok := rec.get("o3"); return !ok && rec.synced }, "a deleted org was kept")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Follow: %v", err)
	}
}
