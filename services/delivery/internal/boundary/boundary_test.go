package boundary

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/crmslack/crmslack/libs/orgaccess"
	"github.com/crmslack/crmslack/libs/testkit"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"

	"github.com/crmslack/crmslack/services/delivery/internal/failure"
)

func access(org string, enabled bool, teams ...string) *teamsv1.OrgAccess {
	a := &teamsv1.OrgAccess{OrgId: org, IntegrationEnabled: enabled}
	for _, t := range teams {
		a.Teams = append(a.Teams, &teamsv1.TeamAccess{TeamId: t, Status: teamsv1.TeamStatus_TEAM_STATUS_ACTIVE})
	}
	return a
}

func code(err error) failure.Code {
	if f, ok := failure.As(err); ok {
		return f.Code
	}
	return 0
}

func TestCheck(t *testing.T) {
	t.Parallel()
	m := NewModel()
	m.Set("o1", access("o1", true, "T1"))
	m.Set("o2", access("o2", false, "T1"))
	broken := access("o3", true)
	broken.Teams = append(broken.Teams, &teamsv1.TeamAccess{TeamId: "T1", Status: teamsv1.TeamStatus_TEAM_STATUS_BROKEN})
	m.Set("o3", broken)
	for _, tc := range []struct {
		org, team string
		want      failure.Code
	}{
		{"o1", "T1", 0},
		{"o1", "T2", failure.TeamNotRegistered},
		{"o2", "T1", failure.IntegrationDisabled},
		{"o3", "T1", failure.TeamNotRegistered},
		{"o9", "T1", failure.TeamNotRegistered},
	} {
		if got := code(m.Check(tc.org, tc.team)); got != tc.want {
			t.Errorf("Check(%s, %s) = %v, want %v", tc.org, tc.team, got, tc.want)
		}
	}
	m.Set("o1", nil)
	if code(m.Check("o1", "T1")) != failure.TeamNotRegistered {
		t.Error("a forgotten org is still allowed")
	}
}

// TestWatch: the model follows the bucket through the shared watcher.
func TestWatch(t *testing.T) {
	t.Parallel()
	js := testkit.JetStream(t, testkit.NATSConn(t, testkit.NATS(t)))
	ctx := testkit.Context(t)
	kv, err := orgaccess.Bucket(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	put := func(key string, a *teamsv1.OrgAccess) {
		b, _ := proto.Marshal(a)
		if _, err := kv.Put(ctx, key, b); err != nil {
			t.Fatal(err)
		}
	}
	put("o1", access("o1", true, "T1"))
	put("o2", access("o2", true, "T1"))
	m := NewModel()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- orgaccess.Watch(wctx, kv, m, slog.New(slog.DiscardHandler)) }()
	select {
	case <-m.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("not ready after the initial values")
	}
	if m.Check("o1", "T1") != nil || m.Check("o2", "T1") != nil {
		t.Fatal("initial values not loaded")
	}
	put("o1", access("o1", false, "T1"))                       // disabled
	put("o2", access("someone-else", true, "T1"))              // under the wrong key
	if _, err := kv.Put(ctx, "o3", []byte{0xff}); err != nil { // undecodable
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, func() bool {
		return code(m.Check("o1", "T1")) == failure.IntegrationDisabled && code(m.Check("o2", "T1")) == failure.TeamNotRegistered
	}, "updates applied")
	put("o2", access("o2", true, "T1"))
	testkit.Eventually(t, 5*time.Second, func() bool { return m.Check("o2", "T1") == nil }, "o2 restored")
	if err := kv.Delete(ctx, "o2"); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return m.Check("o2", "T1") != nil }, "deleted org refused")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Watch after its context ended: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return after its context ended")
	}
}
