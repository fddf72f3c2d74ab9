package statekv

import (
	"errors"
	"testing"
	"time"

	"github.com/crmslack/crmslack/libs/testkit"

	"github.com/crmslack/crmslack/services/signals/internal/app"
	"github.com/crmslack/crmslack/services/signals/internal/burst"
)

func TestGroupsAndMarkers(t *testing.T) {
	t.Parallel()
	ns := testkit.NATS(t)
	js := testkit.JetStream(t, testkit.NATSConn(t, ns))
	ctx := testkit.Context(t)
	kv, err := Bind(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	s := New(kv)
	if g, rev, err := s.Group(ctx, "k"); g != nil || rev != 0 || err != nil {
		t.Fatalf("no group yet: %v %d %v", g, rev, err)
	}
	g := burst.Group{PostKey: "p", Entries: []burst.Entry{{EventID: "e1", At: time.Now().UTC()}}, Seen: []string{"e0"}}
	rev, err := s.PutGroup(ctx, "k", g, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutGroup(ctx, "k", g, 0); !errors.Is(err, app.ErrConflict) {
		t.Fatalf("create over a group: %v", err)
	}
	if _, err := s.PutGroup(ctx, "k", g, rev+7); !errors.Is(err, app.ErrConflict) {
		t.Fatalf("write at a stale revision: %v", err)
	}
	got, grev, err := s.Group(ctx, "k")
	if err != nil || grev != rev || !got.Has("e1") || !got.Has("e0") || got.Has("e2") {
		t.Fatalf("read back %+v rev %d err %v", got, grev, err)
	}
	if err := s.DeleteGroup(ctx, "k", rev); err != nil {
		t.Fatal(err)
	}
	if g, _, _ := s.Group(ctx, "k"); g != nil {
		t.Fatalf("deleted group read back: %+v", g)
	}
	if _, err := s.PutGroup(ctx, "k", g, 0); err != nil {
		t.Fatalf("a new group after a delete: %v", err)
	}
	if done, _ := s.Reported(ctx, "o", "a@x"); done {
		t.Fatal("reported before marking")
	}
	for range 2 {
		if err := s.MarkReported(ctx, "o", "a@x"); err != nil {
			t.Fatal(err)
		}
	}
	if done, _ := s.Reported(ctx, "o", "a@x"); !done {
		t.Fatal("not reported after marking")
	}
}
