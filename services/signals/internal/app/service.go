// Package app is the signals service's use cases: the settings commands
// (read, tick cells, replace, reset, team choices) and the handling of sales
// signals and of the egress's outcomes for them. It holds the rules; the
// ports it needs are declared in ports.go and the adapters live elsewhere.
package app

import (
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/crmslack/crmslack/services/signals/internal/burst"
	"github.com/crmslack/crmslack/services/signals/internal/render"
)

// Config is what the service is set with.
type Config struct {
	// Window is storm control's window. Default burst.DefaultWindow.
	Window time.Duration
	Render render.Config
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Service is safe for concurrent use.
type Service struct {
	cfg      Config
	settings SettingsStore
	view     SettingsView
	access   Access
	dir      Directory
	state    State
	pub      Publisher
	metrics  Metrics
	log      *slog.Logger
	now      func() time.Time

	// A group's signal and outcome handlers run one at a time in this
	// replica, so its messages are published in the order of its changes;
	// across replicas the stored revision arbitrates.
	locks  [64]sync.Mutex
	groups groupCache
}

// New returns the service.
func New(cfg Config, settings SettingsStore, view SettingsView, access Access, dir Directory, state State, pub Publisher, m Metrics, log *slog.Logger) *Service {
	if cfg.Window <= 0 {
		cfg.Window = burst.DefaultWindow
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Service{cfg: cfg, settings: settings, view: view, access: access, dir: dir, state: state, pub: pub, metrics: m, log: log, now: now,
		groups: groupCache{window: cfg.Window}}
}

func (s *Service) lock(key string) func() {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	mu := &s.locks[h.Sum32()%uint32(len(s.locks))]
	mu.Lock()
	return mu.Unlock
}
