// Package owners finds a record owner's Slack account in a team, by email,
// through the team registry's directory of the team (ListDirectory), kept
// here for a short while: a burst of signals costs one directory read per
// team, not one call per signal.
package owners

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"
)

// DefaultTTL is how long a team's directory is kept: a person who joins a
// team is found within it.
const DefaultTTL = 30 * time.Second

// callTimeout bounds one directory read.
const callTimeout = 10 * time.Second

// maxDirectoryBytes bounds a ListDirectory answer (about 70 bytes per
// person: 64 MiB is close to a million people).
const maxDirectoryBytes = 64 << 20

// Directory implements app.Directory. Safe for concurrent use.
type Directory struct {
	c   teamsv1.TeamRegistryServiceClient
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	teams map[string]team // org/team
	loads singleflight.Group
}

type team struct {
	byEmail map[string]string // lower-case email → Slack user id
	fetched time.Time
}

// New returns the directory over the registry at cc; ttl 0 means DefaultTTL.
func New(cc grpc.ClientConnInterface, ttl time.Duration) *Directory {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Directory{c: teamsv1.NewTeamRegistryServiceClient(cc), ttl: ttl, now: time.Now, teams: map[string]team{}}
}

// FindUser returns the Slack user id of email in the team, "" when the team
// has nobody with it or is no longer the org's (removed, token broken).
func (d *Directory) FindUser(ctx context.Context, org, teamID, email string) (string, error) {
	t, err := d.team(ctx, org, teamID)
	if err != nil {
		return "", err
	}
	return t.byEmail[strings.ToLower(strings.TrimSpace(email))], nil
}

func (d *Directory) team(ctx context.Context, org, teamID string) (team, error) {
	key := org + "/" + teamID
	d.mu.Lock()
	t, ok := d.teams[key]
	d.mu.Unlock()
	if ok && d.now().Sub(t.fetched) < d.ttl {
		return t, nil
	}
	ch := d.loads.DoChan(key, func() (any, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
		defer cancel()
		t, err := d.fetch(lctx, org, teamID)
		if err != nil {
			return team{}, err
		}
		d.mu.Lock()
		d.teams[key] = t
		d.mu.Unlock()
		return t, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return team{}, r.Err
		}
		return r.Val.(team), nil
	case <-ctx.Done():
		return team{}, ctx.Err()
	}
}

func (d *Directory) fetch(ctx context.Context, org, teamID string) (team, error) {
	resp, err := d.c.ListDirectory(ctx, &teamsv1.ListDirectoryRequest{OrgId: org, TeamId: teamID}, grpc.MaxCallRecvMsgSize(maxDirectoryBytes))
	switch status.Code(err) {
	case codes.OK:
	case codes.NotFound, codes.FailedPrecondition:
		// The team is not (or no longer) usable for the org: nobody is
		// reachable through it.
		return team{byEmail: map[string]string{}, fetched: d.now()}, nil
	default:
		return team{}, fmt.Errorf("reading the directory of team %s: %w", teamID, err)
	}
	t := team{byEmail: make(map[string]string, len(resp.GetUsers())), fetched: d.now()}
	for _, u := range resp.GetUsers() {
		if e := strings.ToLower(strings.TrimSpace(u.GetEmail())); e != "" {
			t.byEmail[e] = u.GetId()
		}
	}
	return t, nil
}
