package bus

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A replica fetches no more than it has room for and tracks every message it
// holds, from the fetch that brought it until it is settled, keeping each
// alive with InProgress once half its AckWait has run. nats.go's Consume
// holds a buffer the caller cannot see, so a message waiting there behind a
// slow handler aged towards its AckWait unrenewed: AckWait had to be long
// enough for the slowest wait, and a killed replica's messages waited that
// long before another replica got them. With every held message renewed,
// AckWait only bounds how long a dead replica's messages wait.
const (
	// fetchWait is how long one fetch waits for messages on the server; an
	// idle replica asks again at this pace, and a stopping one stops within it.
	fetchWait = time.Second
	// fetchRetry is the pause after a fetch the server refused.
	fetchRetry = time.Second
)

// holder counts and tracks what a replica holds.
type holder struct {
	limit   int
	ackWait time.Duration

	mu   sync.Mutex
	msgs map[*held]struct{}
	room chan struct{} // signalled when a held message is settled
}

type held struct {
	msg     jetstream.Msg
	touched time.Time // its delivery or last InProgress: AckWait runs from it
	// until is when its handler's time runs out (zero while it waits): a
	// handler hung past it, ignoring its ctx, is no longer kept alive, so
	// the server redelivers its message after AckWait.
	until time.Time
}

func newHolder(limit int, ackWait time.Duration) *holder {
	return &holder{limit: limit, ackWait: ackWait, msgs: make(map[*held]struct{}, limit), room: make(chan struct{}, 1)}
}

func (h *holder) hold(m jetstream.Msg, now time.Time) *held {
	x := &held{msg: m, touched: now}
	h.mu.Lock()
	h.msgs[x] = struct{}{}
	h.mu.Unlock()
	return x
}

// release forgets x once it is settled.
func (h *holder) release(x *held) {
	h.mu.Lock()
	delete(h.msgs, x)
	h.mu.Unlock()
	select {
	case h.room <- struct{}{}:
	default:
	}
}

func (h *holder) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.msgs)
}

// started records that x's handler runs until at the latest.
func (h *holder) started(x *held, until time.Time) {
	h.mu.Lock()
	x.until = until
	h.mu.Unlock()
}

// progressed records an InProgress sent for x at now by its handler, whose
// deadline moved to until.
func (h *holder) progressed(x *held, now, until time.Time) {
	h.mu.Lock()
	x.touched, x.until = now, until
	h.mu.Unlock()
}

// due returns the held messages whose AckWait is half gone, marked renewed.
func (h *holder) due(now time.Time) []jetstream.Msg {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []jetstream.Msg
	for x := range h.msgs {
		if now.Sub(x.touched) >= h.ackWait/2 && (x.until.IsZero() || now.Before(x.until)) {
			x.touched = now
			out = append(out, x.msg)
		}
	}
	return out
}

// waitRoom returns how many messages the next fetch may bring: it waits
// while more than half the limit is held, so fetches are not one message
// each, and returns 0 once stopping is closed.
func (h *holder) waitRoom(stopping <-chan struct{}) int {
	for {
		if n := h.count(); n <= h.limit/2 {
			return h.limit - n
		}
		select {
		case <-h.room:
		case <-stopping:
			return 0
		}
	}
}

// pump fetches messages into the work queue until the subscription stops.
func (s *Subscription) pump() {
	defer close(s.pumped)
	for {
		select {
		case <-s.stopping:
			return
		default:
		}
		room := s.holder.waitRoom(s.stopping)
		if room == 0 {
			return
		}
		s.ccMu.Lock()
		cons := s.cons
		s.ccMu.Unlock()
		// Stop cancels the fetch: the server delivers no more to a request
		// whose inbox is gone, where a nak'ed message would otherwise come
		// straight back to the stopping replica.
		fctx, cancel := context.WithTimeout(s.pumpCtx, fetchWait)
		batch, err := cons.Fetch(room, jetstream.FetchContext(fctx))
		if err == nil {
			for msg := range batch.Messages() {
				s.work <- queued{msg: msg, held: s.holder.hold(msg, time.Now())}
			}
			err = batch.Error()
		}
		cancel()
		if s.pumpCtx.Err() != nil {
			return
		}
		if err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages) {
			s.fetched()
			continue
		}
		s.fetchFailed(err)
		select {
		case <-s.stopping:
			return
		case <-time.After(fetchRetry):
		}
	}
}

// fetched clears a stall the last failed fetch reported.
func (s *Subscription) fetched() {
	if s.fetchErr.Swap(false) {
		s.unhealthy.Store(nil)
	}
}

func (s *Subscription) fetchFailed(err error) {
	s.fetchErr.Store(true)
	switch {
	case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConsumerNotFound):
		s.setUnhealthy("consumer deleted on the server: " + err.Error())
		s.log.Error("consumer deleted on the server; re-creating it", "error", err)
		s.check()
	default:
		s.setUnhealthy("fetching from the consumer failed: " + err.Error())
		s.log.Warn("fetching messages failed", "error", err)
		s.check()
	}
}

// keepAlive renews the held messages whose AckWait is half gone, until the
// subscription is done.
func (s *Subscription) keepAlive() {
	t := time.NewTicker(max(s.spec.AckWait/5, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case now := <-t.C:
			for _, m := range s.holder.due(now) {
				_ = m.InProgress() // a failure leaves the message to its AckWait, as before
			}
		}
	}
}
