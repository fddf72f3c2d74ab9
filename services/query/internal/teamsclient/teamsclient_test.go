package teamsclient_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/crmslack/crmslack/libs/identity"
	"github.com/crmslack/crmslack/libs/testkit"
	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"
	"github.com/crmslack/crmslack/services/query/internal/app"
	"github.com/crmslack/crmslack/services/query/internal/teamsclient"
)

// registry is an in-test team registry counting its calls.
type registry struct {
	teamsv1.UnimplementedTeamRegistryServiceServer
	mu    sync.Mutex
	calls int
	down  bool
}

func (r *registry) GetSlackUser(_ context.Context, req *teamsv1.GetSlackUserRequest) (*teamsv1.GetSlackUserResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	switch {
	case r.down:
		return nil, status.Error(codes.Unavailable, "down")
	case req.GetUserId() == "U1":
		return &teamsv1.GetSlackUserResponse{Email: "ada@z.test", RealName: "Ada"}, nil
	}
	return nil, status.Error(codes.NotFound, "no such user")
}

func (r *registry) ResolveTeam(_ context.Context, req *teamsv1.ResolveTeamRequest) (*teamsv1.ResolveTeamResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if req.GetTeamId() == "TOFF" {
		return &teamsv1.ResolveTeamResponse{OrgIds: []string{"o1"}}, nil // integration disabled
	}
	return &teamsv1.ResolveTeamResponse{OrgIds: []string{"o1", "o2"}, IntegrationEnabled: true}, nil
}

func (r *registry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

func TestCachesAnswers(t *testing.T) {
	t.Parallel()
	reg := &registry{}
	cc := testkit.Dial(t, testkit.GRPCServer(t, identity.Teams, func(s *grpc.Server) { teamsv1.RegisterTeamRegistryServiceServer(s, reg) }))

	now := time.Unix(1_800_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	c := teamsclient.New(cc, 10*time.Minute, clock)
	ctx := context.Background()

	for range 3 {
		u, err := c.SlackUser(ctx, "T1", "U1")
		if err != nil || u.Email != "ada@z.test" {
			t.Fatalf("%+v, %v", u, err)
		}
		if _, err := c.SlackUser(ctx, "T1", "U2"); !errors.Is(err, app.ErrUnknownSlackUser) {
			t.Fatalf("unknown user: %v", err)
		}
	}
	if n := reg.count(); n != 2 {
		t.Fatalf("%d registry calls for 6 look-ups of 2 users, want 2", n)
	}
	advance(2 * time.Minute) // past the unknown-user TTL, not the user TTL
	_, _ = c.SlackUser(ctx, "T1", "U1")
	_, _ = c.SlackUser(ctx, "T1", "U2")
	if n := reg.count(); n != 3 {
		t.Fatalf("%d calls, want 3 (only the unknown user asked again)", n)
	}
	reg.mu.Lock()
	reg.down = true
	reg.mu.Unlock()
	advance(11 * time.Minute)
	if _, err := c.SlackUser(ctx, "T1", "U1"); err == nil || errors.Is(err, app.ErrUnknownSlackUser) {
		t.Fatalf("registry down: %v, want a failure that is not 'unknown'", err)
	}

	orgs, err := c.OrgsOfTeam(ctx, "T1")
	if err != nil || !slices.Equal(orgs, []string{"o1", "o2"}) {
		t.Fatalf("orgs %v, %v", orgs, err)
	}
	if orgs, err := c.OrgsOfTeam(ctx, "TOFF"); err != nil || len(orgs) != 0 {
		t.Fatalf("disabled integration: %v, %v", orgs, err)
	}
}
