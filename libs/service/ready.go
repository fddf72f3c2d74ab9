package service

import (
	"maps"
	"slices"
	"sync"
)

// holds counts what holds readiness back. Run itself holds it until every
// listener is bound; a service may hold it longer (HoldReady).
type holds struct {
	mu sync.Mutex
	n  int
}

// HoldReady keeps the service not ready until the returned release is
// called (once; later calls do nothing): for start-up work that must finish
// before the service takes work, such as rebuilding a projection. Call it
// in Build; release from a part.
func (rt *Runtime) HoldReady() (release func()) {
	rt.holds.mu.Lock()
	rt.holds.n++
	rt.holds.mu.Unlock()
	var once sync.Once
	return func() { once.Do(rt.releaseOne) }
}

// release drops Run's own hold, taken before Build.
func (rt *Runtime) release() { rt.releaseOne() }

func (rt *Runtime) releaseOne() {
	rt.holds.mu.Lock()
	rt.holds.n--
	last := rt.holds.n == 0
	rt.holds.mu.Unlock()
	if !last {
		return
	}
	rt.ready.MarkReady(true)
	args := make([]any, 0, 2*len(rt.bound))
	for _, name := range slices.Sorted(maps.Keys(rt.bound)) {
		args = append(args, name, rt.bound[name])
	}
	rt.log.Info(rt.spec.Name+" serving", args...)
	if rt.spec.Ready != nil {
		rt.spec.Ready(rt.bound)
	}
}
