// Package app is the team registry's application layer: each exported
// method of [Service] is one command or query, loading rows through [Repo],
// applying the domain (package registry), storing the result with the events
// it produced, then publishing those events and the org's access.
//
// Changes and their events are stored together (the row's pending events),
// so an event whose publish failed is published later by [Service.Sweep],
// with the same id: at least once, and once within the stream's duplicate
// window.
package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/crmslack/crmslack/libs/fault"
	"github.com/crmslack/crmslack/libs/installticket"
	"github.com/crmslack/crmslack/services/teams/internal/registry"
	"github.com/crmslack/crmslack/services/teams/internal/sealing"
)

// ErrUnavailable marks a failure of a dependency (Slack, the bus) that a
// retry may fix.
var ErrUnavailable = fault.Unavailable

func unavailable(format string, args ...any) error {
	return &registry.Error{Kind: ErrUnavailable, Msg: fmt.Sprintf(format, args...)}
}

// Config tunes the service.
type Config struct {
	// InstallURL is the gateway's /slack/install URL BeginInstall points to.
	InstallURL string
	// TicketTTL is how long an install ticket is valid.
	TicketTTL time.Duration
	// MembershipTTL is how long a positive users.lookupByEmail answer is
	// cached; negative answers are kept a fifth of that.
	MembershipTTL time.Duration
	// ExpirySkew: a token expiring within it counts as expired.
	ExpirySkew time.Duration
	// DirectoryTTL is how long a team's channels and users are cached for
	// ListDirectory.
	DirectoryTTL time.Duration
	// TokenCheckInterval is how often CheckTokens asks Slack about every
	// active team's token. Default 15m.
	TokenCheckInterval time.Duration
}

// Service is the registry's use cases. Safe for concurrent use.
type Service struct {
	cfg     Config
	repo    Repo
	pub     Publisher
	access  AccessStore
	slack   Slack
	keys    *sealing.Keyring
	tickets *installticket.Signer
	log     *slog.Logger
	now     func() time.Time

	locks     [64]sync.Mutex
	refreshes singleflight.Group
	replica   string // this replica's name in refresh claims
	members   *memberCache
	users     *userCache
	dirs      *directoryCache
	dirLoads  singleflight.Group

	retryMu     sync.Mutex
	retryAccess map[string]bool // orgs whose access sync failed

	metrics *Metrics // nil until RegisterMetrics: then nothing is counted

	checkMu   sync.Mutex
	lastCheck time.Time // of CheckTokens
}

// New builds the service. now may be nil (time.Now).
func New(cfg Config, repo Repo, pub Publisher, access AccessStore, slack Slack,
	keys *sealing.Keyring, tickets *installticket.Signer, log *slog.Logger, now func() time.Time,
) *Service {
	if now == nil {
		now = time.Now
	}
	if cfg.TicketTTL == 0 {
		cfg.TicketTTL = installticket.DefaultTTL
	}
	if cfg.MembershipTTL == 0 {
		cfg.MembershipTTL = 10 * time.Minute
	}
	if cfg.ExpirySkew == 0 {
		cfg.ExpirySkew = time.Minute
	}
	if cfg.DirectoryTTL == 0 {
		cfg.DirectoryTTL = 5 * time.Minute
	}
	if cfg.TokenCheckInterval == 0 {
		cfg.TokenCheckInterval = 15 * time.Minute
	}
	return &Service{
		cfg: cfg, repo: repo, pub: pub, access: access, slack: slack, keys: keys, tickets: tickets,
		log: log, now: now, replica: replicaName(), members: newMemberCache(10_000), users: newUserCache(10_000), dirs: newDirectoryCache(), retryAccess: map[string]bool{},
	}
}

// replicaName names this replica in the rows it claims: random, so that a
// restarted replica does not take its dead predecessor's claims for its own.
func replicaName() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// lockOrg serialises this replica's changes to one org, so they rarely race
// on a row's version; replicas are kept apart by the versions themselves.
func (s *Service) lockOrg(org string) func() {
	h := fnv.New32a()
	h.Write([]byte(org))
	m := &s.locks[h.Sum32()%uint32(len(s.locks))]
	m.Lock()
	return m.Unlock
}

// mutateTeam applies change to the stored row (nil when there is none) and
// stores the result, retrying on a concurrent update. change returns nil
// for "nothing to do". The result is the stored row (or the unchanged one).
func (s *Service) mutateTeam(ctx context.Context, org, team string, change func(cur *registry.Team) (*registry.Team, error)) (registry.Team, bool, error) {
	for attempt := 0; ; attempt++ {
		cur, found, err := s.repo.Team(ctx, org, team)
		if err != nil {
			return registry.Team{}, false, err
		}
		var curp *registry.Team
		if found {
			curp = &cur
		}
		next, err := change(curp)
		if err != nil {
			return registry.Team{}, false, err
		}
		if next == nil {
			return cur, found, nil
		}
		err = s.repo.SaveTeam(ctx, next)
		if errors.Is(err, registry.ErrConflict) && attempt < 10 {
			continue
		}
		if err != nil {
			return registry.Team{}, false, err
		}
		return *next, true, nil
	}
}

func (s *Service) mutateOrg(ctx context.Context, org string, change func(cur *registry.Org) (*registry.Org, error)) (registry.Org, bool, error) {
	for attempt := 0; ; attempt++ {
		cur, found, err := s.repo.Org(ctx, org)
		if err != nil {
			return registry.Org{}, false, err
		}
		var curp *registry.Org
		if found {
			curp = &cur
		}
		next, err := change(curp)
		if err != nil {
			return registry.Org{}, false, err
		}
		if next == nil {
			return cur, found, nil
		}
		err = s.repo.SaveOrg(ctx, next)
		if errors.Is(err, registry.ErrConflict) && attempt < 10 {
			continue
		}
		if err != nil {
			return registry.Org{}, false, err
		}
		return *next, true, nil
	}
}
