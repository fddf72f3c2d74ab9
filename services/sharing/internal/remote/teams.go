package remote

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc"

	teamsv1 "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"

	"github.com/crmslack/crmslack/services/sharing/internal/app"
	"github.com/crmslack/crmslack/services/sharing/internal/share"
)

// DirectoryTTL is how long a team's directory is kept here, on top of the
// registry's own cache: a share checks its targets against it, and a big
// workspace's directory is megabytes, not worth moving for every share.
const DirectoryTTL = 30 * time.Second

// maxDirectoryBytes bounds a ListDirectory answer (about 70 bytes per
// person: 64 MiB is close to a million people).
const maxDirectoryBytes = 64 << 20

// Teams implements app.Teams over the team registry. Safe for concurrent
// use.
type Teams struct {
	c   teamsv1.TeamRegistryServiceClient
	now func() time.Time

	mu    sync.Mutex
	dirs  map[string]cachedDirectory // org/team
	loads singleflight.Group
}

type cachedDirectory struct {
	dir     share.Directory
	fetched time.Time
}

// NewTeams returns the registry client on cc.
func NewTeams(cc grpc.ClientConnInterface) *Teams {
	return &Teams{c: teamsv1.NewTeamRegistryServiceClient(cc), now: time.Now, dirs: map[string]cachedDirectory{}}
}

// MemberTeams lists the org's active teams the email belongs to.
func (c *Teams) MemberTeams(ctx context.Context, org, email string) ([]share.Team, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.c.ListTeams(ctx, &teamsv1.ListTeamsRequest{OrgId: org, MemberEmail: email})
	if err != nil {
		return nil, classify(err, "asking the team registry which teams "+email+" belongs to")
	}
	var out []share.Team
	for _, t := range resp.GetTeams() {
		if t.GetStatus() != teamsv1.TeamStatus_TEAM_STATUS_ACTIVE {
			continue
		}
		out = append(out, share.Team{ID: t.GetTeam().GetTeamId(), Name: t.GetTeam().GetName(), Domain: t.GetTeam().GetDomain()})
	}
	return out, nil
}

// Directory lists a team's channels and people, from the local cache when
// it is younger than DirectoryTTL; concurrent misses share one call.
func (c *Teams) Directory(ctx context.Context, org, team string) (share.Directory, error) {
	key := org + "/" + team
	c.mu.Lock()
	d, ok := c.dirs[key]
	c.mu.Unlock()
	if ok && c.now().Sub(d.fetched) < DirectoryTTL {
		return d.dir, nil
	}
	ch := c.loads.DoChan(key, func() (any, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), directoryTimeout)
		defer cancel()
		dir, err := c.fetchDirectory(lctx, org, team)
		if err != nil {
			return share.Directory{}, err
		}
		now := c.now()
		c.mu.Lock()
		for k, e := range c.dirs {
			if now.Sub(e.fetched) >= DirectoryTTL {
				delete(c.dirs, k)
			}
		}
		c.dirs[key] = cachedDirectory{dir: dir, fetched: now}
		c.mu.Unlock()
		return dir, nil
	})
	select {
	case <-ctx.Done():
		return share.Directory{}, share.Errorf(share.ErrUnavailable, "listing the channels and people of team %s: %v", team, ctx.Err())
	case r := <-ch:
		if r.Err != nil {
			return share.Directory{}, r.Err
		}
		return r.Val.(share.Directory), nil
	}
}

func (c *Teams) fetchDirectory(ctx context.Context, org, team string) (share.Directory, error) {
	resp, err := c.c.ListDirectory(ctx, &teamsv1.ListDirectoryRequest{OrgId: org, TeamId: team}, grpc.MaxCallRecvMsgSize(maxDirectoryBytes))
	if err != nil {
		return share.Directory{}, classify(err, "listing the channels and people of team "+team)
	}
	d := share.Directory{
		Team:     team,
		Channels: make([]share.Channel, 0, len(resp.GetChannels())),
		Users:    make([]share.User, 0, len(resp.GetUsers())),
	}
	for _, ch := range resp.GetChannels() {
		d.Channels = append(d.Channels, share.Channel{ID: ch.GetId(), Name: ch.GetName(), Private: ch.GetIsPrivate(), CanPost: ch.GetCanPost()})
	}
	for _, u := range resp.GetUsers() {
		d.Users = append(d.Users, share.User{ID: u.GetId(), Name: u.GetName(), RealName: u.GetRealName(), Email: u.GetEmail()})
	}
	return d, nil
}

// SlackUser returns a Slack user's profile.
func (c *Teams) SlackUser(ctx context.Context, team, user string) (app.SlackUser, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.c.GetSlackUser(ctx, &teamsv1.GetSlackUserRequest{TeamId: team, UserId: user})
	if err != nil {
		return app.SlackUser{}, classify(err, "looking up Slack user "+user)
	}
	return app.SlackUser{Email: resp.GetEmail(), RealName: resp.GetRealName(), Deleted: resp.GetDeleted()}, nil
}
